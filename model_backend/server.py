"""Any `ModelBackend` behind an OpenAI-compatible HTTP API, speaking DeepSeek's wire format.

`POST /v1/chat/completions` (streamed as server-sent events or not) and `GET /v1/models`, so any OpenAI client or
framework can use the local DSA model, or reach a remote provider through agentkit. Streams look like DeepSeek's:
`chat.completion.chunk` objects whose first delta carries the role, then `reasoning_content` deltas, `content` deltas,
tool-call fragments (index, id, type and name first, then argument pieces), a final chunk with the finish reason and
the usage, and `data: [DONE]`.

The server protects itself and its host: requests are validated (OpenAI-style error bodies: `{"error": {"message",
"type", "param", "code"}}`), at most `max_concurrent` run at once and `max_queue` more wait; beyond that the answer is
429 with Retry-After instead of an unbounded queue. A client that disconnects cancels its generation. It binds to
127.0.0.1 unless told otherwise, takes an optional API key, and shuts down gracefully (in-flight requests get
`graceful_timeout` seconds to finish, then the backend is closed)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agentkit import errors
from agentkit.backend import ChatDelta, ChatRequest, ModelBackend, ResponseAssembler, Usage
from agentkit.backends.botched_calls import BotchedCall, StreamedCalls, first_botched_call
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage
from agentkit.redaction import Redactor

log = logging.getLogger("agentkit.server")

MAX_BODY_BYTES = 8 * 1024 * 1024


# --------------------------------------------------------------------------------------------------------------------
# Request validation


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _ContentPart(_Wire):
    type: Literal["text"]
    text: str


class _Function(_Wire):
    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] = "{}"


class _ToolCall(_Wire):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: _Function


class _Message(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_ContentPart] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str | None:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content


class _ToolFunction(_Wire):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class _ToolSpec(_Wire):
    type: Literal["function"] = "function"
    function: _ToolFunction


class _Thinking(_Wire):
    type: Literal["enabled", "disabled"]


class _StreamOptions(_Wire):
    include_usage: bool = False


class ChatBody(_Wire):
    """The accepted subset of OpenAI's chat-completions body, plus DeepSeek's `thinking` switch, vLLM's
    `chat_template_kwargs`, `attention` ("dense" | "sparse") and `beams` (beam width of the turn), the last two for
    the local model only."""

    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    tools: list[_ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)
    thinking: _Thinking | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    attention: Literal["dense", "sparse"] | None = None
    beams: int | None = Field(default=None, ge=1, le=64)


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", *, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _thinking(body: ChatBody) -> bool | None:
    if body.thinking is not None:
        return body.thinking.type == "enabled"
    kwargs = body.chat_template_kwargs or {}
    for key in ("thinking", "enable_thinking"):
        if isinstance(kwargs.get(key), bool):
            return bool(kwargs[key])
    if body.reasoning_effort is not None:
        return body.reasoning_effort != "none"
    return None


def to_chat_request(body: ChatBody) -> ChatRequest:
    """The agentkit request for a validated body; raises RequestError for conversations that do not hold together."""
    messages: list[Message] = []
    call_names: dict[str, str] = {}
    for i, m in enumerate(body.messages):
        text = m.text()
        if m.role in ("system", "developer"):
            messages.append(SystemMessage(content=text or ""))
        elif m.role == "user":
            if text is None:
                raise RequestError(
                    400, f"messages[{i}]: a user message needs content", param=f"messages.{i}.content"
                )
            messages.append(UserMessage(content=text))
        elif m.role == "assistant":
            calls = []
            for c in m.tool_calls or []:
                args = c.function.arguments
                calls.append(ToolCall(id=c.id, name=c.function.name,
                                      arguments=args if isinstance(args, str) else json.dumps(args)))  # fmt: skip
                call_names[c.id] = c.function.name
            reasoning = m.reasoning_content if m.reasoning_content is not None else m.reasoning
            messages.append(
                AssistantMessage(content=text or None, reasoning_content=reasoning, tool_calls=calls)
            )
        else:
            if not m.tool_call_id or m.tool_call_id not in call_names:
                raise RequestError(
                    400,
                    f"messages[{i}]: a tool message must answer a tool call of an earlier assistant message "
                    f"(tool_call_id {m.tool_call_id!r} is unknown)",
                    param=f"messages.{i}.tool_call_id",
                )
            messages.append(ToolMessage(tool_call_id=m.tool_call_id, name=m.name or call_names[m.tool_call_id],
                                        content=text or ""))  # fmt: skip
    extra: dict[str, Any] = {}
    if body.seed is not None:
        extra["seed"] = body.seed
    if body.attention is not None:
        extra["attention"] = body.attention
    if body.beams is not None:
        extra["beams"] = body.beams
    return ChatRequest(
        messages=messages,
        tools=[t.model_dump() for t in body.tools or []],
        thinking=_thinking(body),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        tool_choice=body.tool_choice,
        reasoning_effort=body.reasoning_effort,
        extra=extra,
    )


def _validation_error(exc: ValidationError) -> RequestError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return RequestError(400, f"invalid request: {where}: {first['msg']}", param=where or None)


def _backend_error(exc: errors.AgentkitError) -> RequestError:
    """Map a backend failure to the HTTP answer a client can act on."""
    if isinstance(exc, errors.ContextLengthError):
        return RequestError(400, exc.message, code="context_length_exceeded")
    if isinstance(exc, errors.BadRequestError):
        return RequestError(400, exc.message)
    if isinstance(exc, errors.RateLimitError):
        return RequestError(429, exc.message, "rate_limit_error", headers={"Retry-After": "1"})
    if isinstance(exc, errors.AuthenticationError | errors.ConnectionError | errors.ProtocolError):
        return RequestError(502, f"the upstream model failed: {exc}", "upstream_error")
    if isinstance(exc, errors.BackendError) and exc.status and 400 <= exc.status < 600:
        return RequestError(exc.status, exc.message, "upstream_error")
    return RequestError(500, f"{type(exc).__name__}: {exc}", "server_error")


def botched_call_error(call: BotchedCall, redactor: Redactor | None = None) -> RequestError:
    """Instead of a tool call whose arguments are not a JSON object (botched_calls.py: why this status and kind)."""
    return RequestError(BotchedCall.STATUS, call.message(redactor), BotchedCall.KIND, code=BotchedCall.KIND,
                        headers=dict(BotchedCall.HEADERS))  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# Responses


def usage_json(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_hit_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "prompt_cache_hit_tokens": u.cache_hit_tokens,
        "prompt_cache_miss_tokens": u.cache_miss_tokens or max(u.prompt_tokens - u.cache_hit_tokens, 0),
    }


class _ChunkWriter:
    """SSE `data:` lines of one streamed completion, in DeepSeek's chunk layout; tool calls go through `StreamedCalls`."""

    def __init__(self, model: str, redactor: Redactor | None = None) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.calls = StreamedCalls()
        self._redactor = redactor

    def chunk(
        self, delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None
    ) -> bytes:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "system_fingerprint": None,
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": usage}  # fmt: skip
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

    def first(self) -> bytes:
        return self.chunk({"role": "assistant", "content": None, "reasoning_content": ""})

    def delta(self, d: ChatDelta) -> list[bytes]:
        if self.calls.broken:
            self.calls.collect(d.tool_calls, d.finish_reason)
            return []
        out = []
        if d.reasoning:
            out.append(self.chunk({"content": None, "reasoning_content": d.reasoning}))
        if d.content:
            out.append(self.chunk({"content": d.content, "reasoning_content": None}))
        for i, frag in enumerate(d.tool_calls):
            out += [self.chunk({"tool_calls": [entry]}) for entry in self.calls.add(frag)]
            if self.calls.broken:  # a botched call (botched_calls.py): send nothing more
                self.calls.collect(d.tool_calls[i + 1 :], d.finish_reason)
                return out
        if d.usage is not None:
            self.usage = d.usage
        if d.finish_reason:
            self.finish_reason = d.finish_reason
        return out

    def end(self) -> bytes:
        """The final chunk and `[DONE]`; after a botched tool call an error event instead, as OpenAI sends one (the
        openai SDK raises `APIError` on a data object with an "error" key, so no `[DONE]` follows)."""
        if (botched := self.calls.botched()) is not None:
            body = botched_call_error(botched, self._redactor).body()
            return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"
        finish = self.finish_reason or ("tool_calls" if self.calls.calls else "stop")
        return self.chunk({}, finish, usage_json(self.usage)) + b"data: [DONE]\n\n"


def completion_json(model: str, assembler: ResponseAssembler) -> dict[str, Any]:
    msg = assembler.message()
    message: dict[str, Any] = {"role": "assistant", "content": msg.content if msg.content is not None else
                               ("" if not msg.tool_calls else None), "reasoning_content": msg.reasoning_content}  # fmt: skip
    if msg.tool_calls:
        message["tool_calls"] = [
            {
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for i, c in enumerate(msg.tool_calls)
        ]
    finish = assembler.finish_reason or ("tool_calls" if msg.tool_calls else "stop")
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_json(assembler.usage),
    }


class _EventStream:
    """An SSE response that stops producing (and cancels the generation) as soon as the client disconnects."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                   (b"x-accel-buffering", b"no")]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def produce() -> None:
            async with contextlib.aclosing(self.chunks) as chunks:  # type: ignore[type-var]
                async for data in chunks:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(produce()), asyncio.ensure_future(disconnected())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, OSError):
                log.warning("stream ended with %s: %s", type(result).__name__, result)


# --------------------------------------------------------------------------------------------------------------------
# The application


@dataclass
class ServerLimits:
    max_concurrent: int = 8
    max_queue: int = 32


class ChatApp:
    """The ASGI application around one backend. `model_id` is the id clients ask for (default: the backend's)."""

    def __init__(
        self,
        backend: ModelBackend,
        *,
        model_id: str | None = None,
        api_key: str | None = None,
        limits: ServerLimits | None = None,
        close_backend: bool = True,
    ) -> None:
        self.backend = backend
        self.model_id = model_id or backend.model
        self.limits = limits or ServerLimits()
        self._api_key = api_key
        self._redactor = Redactor(api_key)
        self._close_backend = close_backend
        self._slots: asyncio.Semaphore | None = None
        self.in_flight = 0
        self.app = Starlette(
            routes=[
                Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]) for prefix in ("/v1", "")
            ] + [Route(f"{prefix}/models", self.models, methods=["GET"]) for prefix in ("/v1", "")],
            lifespan=self._lifespan,
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._slots = asyncio.Semaphore(self.limits.max_concurrent)
        yield
        if self._close_backend:
            close = getattr(self.backend, "aclose", None)
            if close is not None:
                await close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _check_key(self, request: Request) -> None:
        if self._api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._api_key}".encode()):
            raise RequestError(401, "invalid or missing API key: send 'Authorization: Bearer <key>'",
                               "authentication_error", code="invalid_api_key")  # fmt: skip

    async def models(self, request: Request) -> Response:
        try:
            self._check_key(request)
        except RequestError as exc:
            return exc.response()
        return JSONResponse({"object": "list", "data": [
            {"id": self.model_id, "object": "model", "created": 0, "owned_by": "agentkit"}]})  # fmt: skip

    async def chat(self, request: Request) -> Response | _EventStream:
        try:
            self._check_key(request)
            body = await self._body(request)
            chat_request = to_chat_request(body)
        except RequestError as exc:
            return exc.response()
        if self.in_flight >= self.limits.max_concurrent + self.limits.max_queue:
            return RequestError(429, f"the server is busy ({self.in_flight} requests in flight); retry shortly",
                                "rate_limit_error", code="rate_limit_exceeded",
                                headers={"Retry-After": "1"}).response()  # fmt: skip
        self.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1

        try:
            assert self._slots is not None
            await self._slots.acquire()
        except BaseException:
            release()
            raise
        try:
            deltas = self.backend.stream(chat_request)
            first = await anext(aiter(deltas), None)  # errors before the first delta become HTTP errors
        except errors.AgentkitError as exc:
            self._slots.release()
            release()
            return _backend_error(exc).response()
        except BaseException:
            self._slots.release()
            release()
            raise
        if body.stream:
            return _EventStream(self._sse(deltas, first, release))
        try:
            assembler = ResponseAssembler()
            if first is not None:
                assembler.add(first)
            async for delta in deltas:
                assembler.add(delta)
            if (botched := first_botched_call(assembler.message().tool_calls)) is not None:
                return botched_call_error(botched, self._redactor).response()
            return JSONResponse(completion_json(self.model_id, assembler))
        except errors.AgentkitError as exc:
            return _backend_error(exc).response()
        finally:
            await deltas.aclose()  # type: ignore[attr-defined]
            self._slots.release()
            release()

    async def _body(self, request: Request) -> ChatBody:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise RequestError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(raw)
        except ValueError:
            raise RequestError(400, "the request body is not valid JSON") from None
        try:
            body = ChatBody.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        if body.model != self.model_id:
            raise RequestError(404, f"the model {body.model!r} does not exist; this server serves {self.model_id!r}",
                               code="model_not_found", param="model")  # fmt: skip
        return body

    async def _sse(
        self, deltas: AsyncIterator[ChatDelta], first: ChatDelta | None, release: Any
    ) -> AsyncIterator[bytes]:
        writer = _ChunkWriter(self.model_id, self._redactor)
        assert self._slots is not None
        try:
            yield writer.first()
            if first is not None:
                for data in writer.delta(first):
                    yield data
            while not writer.calls.stopped and (delta := await anext(deltas, None)) is not None:
                for data in writer.delta(delta):  # stopped: a botched tool call is known, stop generating
                    yield data
            yield writer.end()
        except errors.AgentkitError as exc:
            yield b"data: " + json.dumps(_backend_error(exc).body()).encode() + b"\n\n"
        finally:
            await deltas.aclose()  # type: ignore[attr-defined]
            self._slots.release()
            release()


# --------------------------------------------------------------------------------------------------------------------
# Running it


class ChatServer:
    """uvicorn serving a `ChatApp`: `run()` in the foreground (the CLI), or `start()`/`stop()` on a background thread
    (tests, examples, benchmarks). `port=0` picks a free port; `base_url` is the OpenAI-style base (…/v1)."""

    def __init__(
        self,
        backend: ModelBackend,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        model_id: str | None = None,
        api_key: str | None = None,
        limits: ServerLimits | None = None,
        graceful_timeout: int = 10,
        log_level: str = "warning",
    ) -> None:
        self.app = ChatApp(backend, model_id=model_id, api_key=api_key, limits=limits)
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level=log_level, lifespan="on",
            timeout_graceful_shutdown=max(1, round(graceful_timeout)), access_log=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM, then finish in-flight requests and close the backend."""
        self._server.run()

    def start(self, timeout: float = 30.0) -> ChatServer:
        self._thread = threading.Thread(target=self._server.run, name="agentkit-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise errors.ConfigurationError(
                    f"the server could not start on {self.host}:{self._server.config.port}"
                )
            if time.monotonic() > deadline:
                raise errors.ConfigurationError("the server did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
