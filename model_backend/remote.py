"""The remote backend: DeepSeek's API and any OpenAI-compatible `/chat/completions` server, streamed over SSE.

Three rules shape this module:
- What goes on the wire is decided by `agentkit.messages.to_wire` with the model's `WirePolicy`; this module only
  shapes the rest of the body (thinking switch, refused parameters) from the provider profile.
- Retries (tenacity) cover the request until the server answers 200: 429 (honouring Retry-After), 5xx and connection
  errors, bounded. Once a stream has started nothing is replayed here; a cut stream raises `ConnectionError` and the
  agent loop decides (it never replays a response that already carried tool calls).
- The API key lives only in the client's headers. It is never in a repr, a log line or an error message; server
  messages that echo it are redacted.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from agentkit.backends.providers import ModelRules, Profile, ThinkingSwitch, get_profile
from agentkit.backends.sse import iter_sse
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agentkit import errors
from agentkit.backend import ChatDelta, ChatRequest, ToolCallFragment, Usage
from agentkit.messages import WirePolicy, to_wire

log = logging.getLogger("agentkit.remote")

DEFAULT_TIMEOUT = httpx.Timeout(connect=15.0, read=300.0, write=30.0, pool=30.0)
_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; `final` is the error to raise when retries run out."""

    def __init__(self, final: errors.BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


class RemoteBackend:
    """A `ModelBackend` for an OpenAI-compatible server, configured by a provider profile.

    `provider` picks the profile (deepseek, openai, vllm, sglang, openrouter, ollama); `base_url` and `api_key` default
    to the profile's environment variables. `policy` overrides the model's reasoning replay rule. Use as an async
    context manager, or call `aclose()`, to release the connection pool.
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
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
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
        self.policy = policy or self.rules.policy
        self.base_url = (base_url or os.environ.get(profile.base_url_env) or profile.base_url).rstrip("/")
        key = api_key if api_key is not None else (os.environ.get(profile.api_key_env or "") or None)
        if profile.key_required and not key:
            raise errors.ConfigurationError(
                f"no API key for provider {profile.name!r}: set the environment variable {profile.api_key_env} "
                f"(or pass api_key=...)"
            )
        self._secret = key or ""
        self.streaming = stream
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._warned: set[str] = set()
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
        effort = request.reasoning_effort
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

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- HTTP ---------------------------------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        """Yield the response as deltas; the final delta carries usage and finish_reason."""
        body = self.build_body(request, stream=self.streaming)
        response = await self._send(body, stream=self.streaming)
        try:
            if not self.streaming:
                yield self._delta_from_message(self._json(await response.aread()))
                return
            async for delta in self._read_stream(response):
                yield delta
        finally:
            await response.aclose()

    async def complete(self, request: ChatRequest) -> ChatDelta:
        """One non-streamed response as a single delta (convenience; `stream` is what the loop uses)."""
        response = await self._send(self.build_body(request, stream=False), stream=False)
        try:
            return self._delta_from_message(self._json(await response.aread()))
        finally:
            await response.aclose()

    async def _send(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(body, stream=stream)
        except _Retryable as exc:
            raise exc.final from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))

    async def _attempt(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        request = self._client.build_request("POST", "/chat/completions", content=json.dumps(body).encode())
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise _Retryable(
                self._err(errors.ConnectionError, f"request timed out ({type(exc).__name__})")
            ) from None
        except httpx.TransportError as exc:
            msg = f"cannot reach {self.base_url} ({type(exc).__name__}: {self._redact(str(exc))})"
            raise _Retryable(self._err(errors.ConnectionError, msg)) from None
        if response.status_code == 200:
            return response
        try:
            raw = await response.aread()
        except httpx.HTTPError:
            raw = b""
        finally:
            await response.aclose()
        raise self._status_error(response.status_code, raw, response.headers.get("retry-after"))

    def _status_error(self, status: int, raw: bytes, retry_after_header: str | None) -> Exception:
        message = self._redact(_error_message(raw) or f"HTTP {status} with no message")
        if status in _RETRYABLE_STATUS:
            cls: type[errors.BackendError] = errors.RateLimitError if status == 429 else errors.ServerError
            retry_after = _parse_retry_after(retry_after_header)
            final = self._err(cls, message, status)
            if retry_after is not None and retry_after > self.max_retry_after:
                return final  # the server asks for a longer pause than we are allowed to wait: give up now
            return _Retryable(final, retry_after)
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
        return self._err(errors.BackendError, message, status)

    def _err(
        self, cls: type[errors.BackendError], message: str, status: int | None = None
    ) -> errors.BackendError:
        return cls(message, status=status, provider=self.profile.name)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._err(
                errors.BackendError,
                f"server sent invalid JSON: {self._redact(raw[:200].decode('utf-8', 'replace'))}",
            ) from None
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            raise self._err(errors.StreamError, self._redact(_error_message(raw) or "unknown error"))
        return data

    # -- parsing ------------------------------------------------------------------------------------------------------

    async def _read_stream(self, response: httpx.Response) -> AsyncIterator[ChatDelta]:
        finished = False
        chunks = 0
        try:
            events = iter_sse(response.aiter_bytes())
            async for event in events:
                if event.data.strip() == "[DONE]":
                    async for _ in events:  # read to the end so the connection goes back to the pool
                        pass
                    return
                if event.event == "error" or not event.data.strip():
                    if event.event == "error":
                        raise self._err(
                            errors.StreamError,
                            self._redact(_error_message(event.data.encode()) or event.data),
                        )
                    continue
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    raise self._err(
                        errors.StreamError, f"malformed stream chunk: {event.data[:200]}"
                    ) from None
                if "error" in chunk and not chunk.get("choices"):
                    raise self._err(
                        errors.StreamError,
                        self._redact(_error_message(event.data.encode()) or "error in stream"),
                    )
                delta = self._delta_from_chunk(chunk)
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
            args = fn.get("arguments")
            out.tool_calls.append(
                ToolCallFragment(
                    index=tc.get("index", pos),
                    id=tc.get("id") or None,
                    name=fn.get("name") or None,
                    arguments=args
                    if isinstance(args, str)
                    else (json.dumps(args) if args is not None else ""),
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
                arguments=_arg_text((tc.get("function") or {}).get("arguments")),
            )
            for i, tc in enumerate(msg.get("tool_calls") or [])
        ]
        content = msg.get("content")
        return ChatDelta(
            reasoning=self._reasoning(msg),
            content=content if isinstance(content, str) and content else None,
            tool_calls=calls,
            usage=_usage(data.get("usage")),
            finish_reason=choice.get("finish_reason") or "stop",
        )


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
        return text[:500]
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
    return text[:500]


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
