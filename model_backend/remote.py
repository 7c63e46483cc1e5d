"""The remote backend: DeepSeek's API and any OpenAI-compatible `/chat/completions` server, streamed over SSE.

Three rules shape this module:
- What goes on the wire is decided by `agentkit.messages.to_wire` with the model's `WirePolicy`; this module only
  shapes the rest of the body (thinking switch, refused parameters) from the provider profile.
- Every failure is a typed `BackendError` whose class says whether it is retryable, by one rule for streamed and
  non-streamed responses alike. An attempt that fails before anything was delivered is retried here; once deltas
  were delivered the loop decides (it never replays a response that carried tool calls). Both draw on the turn's one
  `RetryBudget` (`ChatRequest.retry`), so a turn makes at most `WORST_CASE_ATTEMPTS` requests and fails within
  `WORST_CASE_SECONDS` (less when the run's deadline is nearer).
- The API key lives only in the client's headers and a `Redactor`. Every string that leaves this module (errors,
  streamed text, logs) passes through that redactor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from agentkit import errors
from agentkit.backend import ChatDelta, ChatRequest, ToolCallFragment, Usage
from agentkit.backends.providers import EFFORT_ALIASES, ModelRules, Profile, ThinkingSwitch, get_profile
from agentkit.backends.sse import iter_sse
from agentkit.messages import WirePolicy, to_wire
from agentkit.redaction import Redactor, StreamRedactor
from agentkit.retry import RetryBudget, RetryPolicy

log = logging.getLogger("agentkit.remote")

POOL_TIMEOUT, CONNECT_TIMEOUT, WRITE_TIMEOUT, READ_TIMEOUT = 30.0, 10.0, 30.0, 120.0
DEFAULT_TIMEOUT = httpx.Timeout(
    connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT
)
DEFAULT_RETRY = RetryPolicy()
# A failed attempt that made no progress ends within its timeouts (waiting for a pooled connection, connecting,
# sending, then silence); the worst case of one turn follows from that and the retry policy.
ATTEMPT_SECONDS = POOL_TIMEOUT + CONNECT_TIMEOUT + WRITE_TIMEOUT + READ_TIMEOUT
WORST_CASE_ATTEMPTS = DEFAULT_RETRY.max_attempts
WORST_CASE_SECONDS = DEFAULT_RETRY.worst_case_seconds(ATTEMPT_SECONDS)

MAX_MESSAGE_CHARS = 500
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


class RemoteBackend:
    """A `ModelBackend` for an OpenAI-compatible server, configured by a provider profile.

    `provider` picks the profile (deepseek, openai, vllm, sglang, openrouter, ollama); `base_url` and `api_key` default
    to the profile's environment variables. `policy` overrides the model's reasoning replay rule. `retry` is the
    retry policy of a turn (`max_retries`, `backoff_*`, `max_retry_after` adjust it); the agent loop uses the same
    policy for its own retries, from one budget. Use as an async context manager, or call `aclose()`, to release the
    connection pool.
    """

    def __init__(
        self,
        provider: str | Profile = "deepseek",
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        policy: WirePolicy | None = None,
        model_rules: dict[str, ModelRules] | None = None,
        stream: bool = True,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        max_retry_after: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        profile = provider if isinstance(provider, Profile) else get_profile(provider)
        if model_rules:
            profile = profile.with_rules(model_rules)
        self.profile = profile
        model = model or profile.default_model
        if not model:
            raise errors.ConfigurationError(f"provider {profile.name!r} needs a model id: pass model=...")
        self.model = model
        self.rules = profile.rules_for(model)
        self.context_window = self.rules.context_window  # tokens, where the provider table knows it
        self.policy = policy or self.rules.policy
        self.base_url = (base_url or os.environ.get(profile.base_url_env) or profile.base_url).rstrip("/")
        key = api_key if api_key is not None else (os.environ.get(profile.api_key_env or "") or None)
        if profile.key_required and not key:
            raise errors.ConfigurationError(
                f"no API key for provider {profile.name!r}: set the environment variable {profile.api_key_env} "
                f"(or pass api_key=...)"
            )
        self._redactor = Redactor(key)
        self.streaming = stream
        policy_fields: dict[str, Any] = {}
        if max_retries is not None:
            policy_fields["max_attempts"] = max_retries + 1
        for name, value in (
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("max_retry_after", max_retry_after),
        ):
            if value is not None:
                policy_fields[name] = value
        self.retry_policy = dataclasses.replace(retry or DEFAULT_RETRY, **policy_fields)
        if self.retry_policy.max_attempts < 1:
            raise errors.ConfigurationError("max_retries must be 0 or more (max_attempts at least 1)")
        self._warned: set[str] = set()
        if self.rules.deprecated:
            self._warn_once("deprecated", self.rules.deprecated)
        all_headers = {"Content-Type": "application/json", "User-Agent": "agentkit/0.1", **(headers or {})}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=all_headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return (
            f"RemoteBackend(provider={self.profile.name!r}, model={self.model!r}, base_url={self.base_url!r})"
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> RemoteBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- request shaping ----------------------------------------------------------------------------------------------

    def thinking_on(self, request: ChatRequest) -> bool:
        if request.thinking is None:
            return self.rules.thinks_by_default
        return request.thinking or not self.rules.can_disable_thinking

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body for `/chat/completions`, adapted to what this provider accepts."""
        body: dict[str, Any] = {"model": self.model, "messages": to_wire(request.messages, self.policy)}
        if request.tools:
            body["tools"] = request.tools
        for key in ("max_tokens", "temperature", "top_p", "tool_choice"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        body.update(request.extra)
        self._apply_thinking(body, request)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _apply_thinking(self, body: dict[str, Any], request: ChatRequest) -> None:
        p, thinking = self.profile, self.thinking_on(request)
        switch = p.thinking_switch
        effort = self._effort(request.reasoning_effort)
        if request.thinking is False and not self.rules.can_disable_thinking:
            self._warn_once("no-disable", f"model {self.model!r} always thinks; thinking=False has no effect")
        if switch is ThinkingSwitch.DEEPSEEK:
            if request.thinking is not None and self.rules.can_disable_thinking:
                body["thinking"] = {"type": "enabled" if request.thinking else "disabled"}
            if effort and thinking:
                body["reasoning_effort"] = effort
        elif switch is ThinkingSwitch.REASONING_EFFORT:
            if request.thinking or effort:
                body["reasoning_effort"] = effort or "medium"
        elif switch is ThinkingSwitch.CHAT_TEMPLATE:
            if request.thinking is not None:
                kwargs = body.setdefault("chat_template_kwargs", {})
                kwargs.setdefault("thinking", request.thinking)
                kwargs.setdefault("enable_thinking", request.thinking)
        elif switch is ThinkingSwitch.OPENROUTER:
            if request.thinking is not None or effort:
                body["reasoning"] = {"effort": effort} if effort else {"enabled": bool(request.thinking)}
        if not thinking:
            return
        for key in p.thinking_refuses:
            if body.pop(key, None) is not None:
                self._warn_once(
                    key, f"{p.name} refuses {key!r} in thinking mode; it was dropped from the request"
                )
        for key in p.thinking_ignores:
            if body.pop(key, None) is not None:
                self._warn_once(key, f"{p.name} ignores {key!r} in thinking mode; it was not sent")
        choice = body.get("tool_choice")
        if p.forced_tool_choice_refused_when_thinking and choice not in (None, "auto", "none"):
            body["tool_choice"] = "auto"
            self._warn_once(
                "tool_choice",
                f"{p.name} rejects a forced tool_choice ({json.dumps(choice)}) in thinking mode; sent 'auto' instead",
            )

    def _effort(self, effort: str | None) -> str | None:
        """The reasoning effort this model takes: as given, mapped from a common alias (with a warning), or refused."""
        allowed = self.rules.reasoning_efforts
        if effort is None or allowed is None or effort in allowed:
            return effort
        mapped = EFFORT_ALIASES.get(effort)
        if mapped in allowed:
            self._warn_once(f"effort-{effort}", f"{self.model} takes reasoning_effort {'/'.join(allowed)}; sent "
                            f"{mapped!r} for {effort!r}")  # fmt: skip
            return mapped
        raise errors.ConfigurationError(
            f"reasoning_effort {effort!r} is not one {self.model} takes: use one of {', '.join(allowed)}"
        )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- HTTP ---------------------------------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Yield the response as deltas; the final delta carries usage and finish_reason. Failures before the first
        delta are retried from the turn's budget; after it, they are raised for the loop to decide."""
        budget = request.retry if request.retry is not None else RetryBudget(self.retry_policy)
        payload = json.dumps(self.build_body(request, stream=self.streaming)).encode()
        while True:
            budget.start_attempt()
            delivered = False
            try:
                try:
                    async for delta in self._attempt(payload):
                        delivered = True
                        yield delta
                    return
                except errors.AgentkitError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure leaves this module typed and redacted
                    raise self._typed(exc) from None
            except errors.BackendError as exc:
                if delivered or not exc.retryable:
                    raise
                wait = budget.next_wait(exc.retry_after)
                if wait is None:
                    raise
                log.warning("attempt %d failed (%s); retrying in %.2f s", budget.attempts, exc, wait)
                await asyncio.sleep(wait)

    async def complete(self, request: ChatRequest) -> ChatDelta:
        """The whole response as a single delta (convenience; `stream` is what the loop uses). Same retries."""
        merged = ChatDelta()
        reasoning: list[str] = []
        content: list[str] = []
        async for delta in self.stream(request):
            reasoning.append(delta.reasoning or "")
            content.append(delta.content or "")
            merged.tool_calls.extend(delta.tool_calls)
            merged.usage = delta.usage or merged.usage
            merged.finish_reason = delta.finish_reason or merged.finish_reason
        merged.reasoning = "".join(reasoning) or None
        merged.content = "".join(content) or None
        return merged

    async def _attempt(self, payload: bytes) -> AsyncIterator[ChatDelta]:
        """One request: its answer as deltas, or a typed error."""
        http_request = self._client.build_request("POST", "/chat/completions", content=payload)
        response = await self._client.send(http_request, stream=True)
        try:
            if response.status_code != 200:
                raw = b""
                try:
                    raw = await response.aread()
                except httpx.HTTPError:
                    pass
                raise self._status_error(response.status_code, raw, response.headers.get("retry-after"))
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "text/event-stream" or (not kind and self.streaming):
                async for delta in self._read_stream(response):
                    yield delta
            elif kind in ("application/json", "") or kind.endswith("+json"):
                yield self._delta_from_message(self._json(await self._read_body(response)))
            else:
                head = b""
                try:
                    async for piece in response.aiter_bytes():
                        head += piece
                        if len(head) >= 200:
                            break
                except httpx.HTTPError:
                    pass
                text = " ".join(head.decode("utf-8", "replace").split())
                raise self._err(
                    errors.ProtocolError,
                    f"expected the API's JSON or event stream, got HTTP 200 with Content-Type {kind!r} from "
                    f"{self.base_url}/chat/completions (check base_url: a web page or a proxy answered): {text}",
                    200,
                )
        finally:
            await response.aclose()

    async def _read_body(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.HTTPError as exc:
            raise self._err(
                errors.ConnectionError, f"response body cut before it was complete ({type(exc).__name__})"
            ) from None

    def _typed(self, exc: Exception) -> errors.AgentkitError:
        """The typed, redacted error for anything an attempt raised that is not ours yet."""
        name = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            what = {
                httpx.ConnectTimeout: "connecting",
                httpx.ReadTimeout: "waiting for data",
                httpx.WriteTimeout: "sending the request",
                httpx.PoolTimeout: "waiting for a free connection",
            }.get(type(exc), "waiting")
            return self._err(errors.ConnectionError, f"{self.base_url} timed out {what} ({name})")
        if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
            return self._err(errors.ConnectionError, f"cannot reach {self.base_url} ({name}: {exc})")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return errors.ConfigurationError(
                self._redactor.redact(f"invalid base_url {self.base_url!r}: {exc}")
            )
        if isinstance(
            exc, httpx.TransportError
        ):  # read/write errors, the server closing or breaking the protocol
            return self._err(errors.ConnectionError, f"connection to {self.base_url} failed ({name}: {exc})")
        if isinstance(exc, httpx.DecodingError | httpx.TooManyRedirects):
            return self._err(
                errors.ProtocolError, f"unreadable response from {self.base_url} ({name}: {exc})"
            )
        return self._err(errors.BackendError, f"model backend failed unexpectedly ({name}: {exc})")

    def _status_error(self, status: int, raw: bytes, retry_after_header: str | None) -> errors.BackendError:
        message = _error_message(raw) or f"HTTP {status} with no message"
        if status in _RETRYABLE_STATUS:
            cls: type[errors.BackendError] = errors.RateLimitError if status == 429 else errors.ServerError
            return self._err(cls, message, status, retry_after=_parse_retry_after(retry_after_header))
        if status in (401, 403):
            hint = f" (check {self.profile.api_key_env})" if self.profile.api_key_env else ""
            return self._err(errors.AuthenticationError, message + hint, status)
        if status == 404:
            return self._err(
                errors.NotFoundError, f"{message} (base_url={self.base_url}, model={self.model})", status
            )
        if status in (400, 413, 422):
            low = message.lower()
            cls = (
                errors.ContextLengthError
                if "context" in low and ("length" in low or "maximum" in low)
                else errors.BadRequestError
            )
            return self._err(cls, message, status)
        if 500 <= status < 600:
            return self._err(errors.ServerError, message, status)
        return self._err(errors.BackendError, message, status)

    def _err(
        self,
        cls: type[errors.BackendError],
        message: str,
        status: int | None = None,
        *,
        retry_after: float | None = None,
    ) -> errors.BackendError:
        """Every error of this backend is built here, so every one is redacted (before it is shortened, so a cut can
        never leave part of a key behind)."""
        text = self._redactor.redact(message)
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + f"... ({len(text) - MAX_MESSAGE_CHARS} more characters)"
        return cls(text, status=status, provider=self.profile.name, retry_after=retry_after)

    def _json(self, raw: bytes) -> dict[str, Any]:
        text = raw.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()):  # the text stops inside the JSON: the body was cut
                raise self._err(
                    errors.ConnectionError, f"response body cut mid-JSON after {len(raw)} bytes"
                ) from None
            raise self._err(errors.ProtocolError, f"server sent invalid JSON: {text}", 200) from None
        if not isinstance(data, dict):
            raise self._err(errors.ProtocolError, f"server sent JSON that is not a response: {text}", 200)
        if "error" in data and "choices" not in data:
            raise self._err(errors.StreamError, _error_message(raw) or "unknown error")
        return data

    # -- parsing ------------------------------------------------------------------------------------------------------

    async def _read_stream(self, response: httpx.Response) -> AsyncIterator[ChatDelta]:
        finished = False
        chunks = 0
        reasoning, content = self._redactor.stream(), self._redactor.stream()
        arguments: dict[int, StreamRedactor] = {}
        try:
            events = iter_sse(response.aiter_bytes())
            async for event in events:
                data = event.data.strip()
                if data == "[DONE]":
                    async for _ in events:  # read to the end so the connection goes back to the pool
                        pass
                    break
                if event.event == "error":
                    raise self._err(errors.StreamError, _error_message(event.data.encode()) or event.data)
                if not data:
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise self._err(
                        errors.ProtocolError, f"malformed stream line: {event.data}", 200
                    ) from None
                if not isinstance(chunk, dict):
                    raise self._err(errors.ProtocolError, f"malformed stream line: {event.data}", 200)
                if "error" in chunk and not chunk.get("choices"):
                    raise self._err(errors.StreamError, _error_message(data.encode()) or "error in stream")
                delta = self._delta_from_chunk(chunk)
                if delta.reasoning:
                    delta.reasoning = reasoning.feed(delta.reasoning) or None
                if delta.content:
                    delta.content = content.feed(delta.content) or None
                for i, frag in enumerate(delta.tool_calls):
                    if frag.arguments:
                        red = arguments.setdefault(frag.index, self._redactor.stream())
                        delta.tool_calls[i] = dataclasses.replace(frag, arguments=red.feed(frag.arguments))
                chunks += 1
                finished = finished or delta.finish_reason is not None
                yield delta
        except httpx.HTTPError as exc:
            raise self._err(
                errors.ConnectionError,
                f"stream cut after {chunks} chunks ({type(exc).__name__}); response incomplete",
            ) from None
        if not finished:
            raise self._err(errors.ConnectionError, f"stream ended after {chunks} chunks without finishing")
        tail = ChatDelta(reasoning=reasoning.flush() or None, content=content.flush() or None)
        for index, red in sorted(arguments.items()):
            held = red.flush()
            if held:
                tail.tool_calls.append(ToolCallFragment(index=index, arguments=held))
        if tail.reasoning or tail.content or tail.tool_calls:
            yield tail

    def _reasoning(self, obj: dict[str, Any]) -> str | None:
        for name in self.profile.reasoning_fields:
            value = obj.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    def _delta_from_chunk(self, chunk: dict[str, Any]) -> ChatDelta:
        out = ChatDelta(usage=_usage(chunk.get("usage")))
        choices = chunk.get("choices") or []
        if not choices:
            return out
        choice = choices[0]
        delta = choice.get("delta") or {}
        out.reasoning = self._reasoning(delta)
        content = delta.get("content")
        out.content = content if isinstance(content, str) and content else None
        for pos, tc in enumerate(delta.get("tool_calls") or []):
            fn = tc.get("function") or {}
            out.tool_calls.append(
                ToolCallFragment(
                    index=tc.get("index", pos),
                    id=tc.get("id") or None,
                    name=fn.get("name") or None,
                    arguments=_arg_text(fn.get("arguments")),
                )
            )
        out.finish_reason = choice.get("finish_reason")
        return out

    def _delta_from_message(self, data: dict[str, Any]) -> ChatDelta:
        choice = (data.get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        calls = [
            ToolCallFragment(
                index=i,
                id=tc.get("id"),
                name=(tc.get("function") or {}).get("name"),
                arguments=self._mask(_arg_text((tc.get("function") or {}).get("arguments"))),
            )
            for i, tc in enumerate(msg.get("tool_calls") or [])
        ]
        content = msg.get("content")
        reasoning = self._reasoning(msg)
        return ChatDelta(
            reasoning=self._mask(reasoning) if reasoning else None,
            content=self._mask(content) if isinstance(content, str) and content else None,
            tool_calls=calls,
            usage=_usage(data.get("usage")),
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def _mask(self, text: str) -> str:
        red = self._redactor.stream()
        return red.feed(text) + red.flush()


def _arg_text(args: Any) -> str:
    if isinstance(args, str):
        return args
    return json.dumps(args) if args is not None else ""


def _usage(raw: Any) -> Usage | None:
    """Map OpenAI/DeepSeek usage fields, including DeepSeek's cache hit/miss and reasoning token counts."""
    if not isinstance(raw, dict):
        return None
    prompt = int(raw.get("prompt_tokens") or 0)
    details = raw.get("prompt_tokens_details") or {}
    hit = raw.get("prompt_cache_hit_tokens")
    if hit is None:
        hit = details.get("cached_tokens") if isinstance(details, dict) else None
    hit = int(hit or 0)
    miss = raw.get("prompt_cache_miss_tokens")
    miss = int(miss) if miss is not None else max(prompt - hit, 0)
    cdetails = raw.get("completion_tokens_details") or {}
    reasoning = int((cdetails.get("reasoning_tokens") if isinstance(cdetails, dict) else 0) or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=int(raw.get("completion_tokens") or 0),
        reasoning_tokens=reasoning,
        cache_hit_tokens=hit,
        cache_miss_tokens=miss,
    )


def _error_message(raw: bytes) -> str | None:
    """The human message of an error body in any of the common shapes."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(err.get(key), str):
                    return str(err[key])
        if isinstance(err, str):
            return err
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return text


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
