"""A real HTTP server on 127.0.0.1 that answers each request with a fault chosen on demand, SSE included.

It speaks the same DeepSeek/OpenAI wire format as `ScriptedServer` (whose script gives the healthy replies) and can
instead, per request: reset the connection, hang, drop a stream midway, cut a JSON body, answer an HTML page or
another content type, echo the request's `Authorization` header in a malformed stream line or an error, split the
key across stream chunks, omit usage, or answer 429/503 or an error inside the stream. `refused_url()` gives an address
where nothing listens (connection refused). `fault_table()` runs an agent against every fault and measures what it
returned: status, attempts, seconds, tool executions, and whether the key appeared in anything a user can print or save.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agentkit.testing.scripted_server import Reply, ScriptedServer, _err

FAULTS = (
    "ok",
    "refuse",
    "reset",
    "hang",
    "hang_mid_stream",
    "drop",
    "drop_after_tool_call",
    "cut_json",
    "html",
    "wrong_content_type",
    "echo_auth_stream",
    "echo_auth_error",
    "key_split",
    "no_usage",
    "status_429",
    "status_503",
    "stream_error",
)

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome</h1></body></html>"
)


def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class FaultServer(ScriptedServer):
    """`faults` names the answer to each POST in turn (a list, then `then` for every later request, or a callable
    of the request number and body). Healthy replies ("ok", and the healthy part of a partial fault) come from
    `script`. `seen` records the fault answered to each request."""

    def __init__(
        self,
        faults: list[str] | Callable[[int, dict[str, Any]], str],
        script: Any = None,
        *,
        then: str = "ok",
        **options: Any,
    ) -> None:
        super().__init__(script if script is not None else _tool_then_answer, **options)
        for f in [] if callable(faults) else [*faults, then]:
            if f not in FAULTS or f == "refuse":
                raise ValueError(f"unknown fault {f!r} (refuse: use refused_url()); choose from {FAULTS}")
        self._faults = faults
        self.then = then
        self.seen: list[str] = []

    def _next_fault(self, body: dict[str, Any]) -> str:
        n = len(self.seen)
        if callable(self._faults):
            fault = self._faults(n, body)
        else:
            fault = self._faults[n] if n < len(self._faults) else self.then
        self.seen.append(fault)
        return fault

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: Any
    ) -> bool:
        if method != "POST" or not path.endswith("/chat/completions"):
            return await super()._respond(method, path, headers, raw, writer)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        fault = self._next_fault(body)
        if fault == "ok":
            return await super()._respond(method, path, headers, raw, writer)
        self.requests.append(body)
        auth = headers.get("authorization", "")
        stream = bool(body.get("stream"))
        if fault == "reset":
            writer.transport.abort()
            return False
        if fault == "hang":
            await asyncio.sleep(3600)
            return False
        if fault in ("status_429", "status_503"):
            status = 429 if fault == "status_429" else 503
            extra = {"Retry-After": "0"} if status == 429 else {}
            return await self._json(writer, status, _err("test server: injected fault"), extra)
        if fault == "echo_auth_error":
            message = f"upstream refused the request; headers: Authorization: {auth}, Content-Type: application/json"
            return await self._json(writer, 502, _err(message))
        if fault in ("html", "wrong_content_type"):
            payload, kind = (HTML_PAGE, "text/html") if fault == "html" else (b"OK", "text/plain")
            await self._raw(writer, 200, kind, payload)
            return True
        if fault == "cut_json" or (fault in ("drop", "hang_mid_stream") and not stream):
            healthy = self.next_reply(body)
            healthy = healthy if isinstance(healthy, Reply) else Reply(content="fallback")
            payload = json.dumps(self._completion(body, healthy)).encode()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            )
            writer.write(head.encode() + payload[: len(payload) // 2])
            await writer.drain()
            if fault == "hang_mid_stream":
                await asyncio.sleep(3600)
            writer.transport.abort()
            return False
        if fault == "echo_auth_stream" and not stream:
            text = f"upstream error; request headers were Authorization: {auth}; Accept: */*".encode()
            await self._raw(writer, 200, "application/json", text)
            return True
        reply = self.next_reply(body)
        if not isinstance(reply, Reply):
            reply = Reply(content="fallback")
        events = self._events(body, reply)
        key = auth.removeprefix("Bearer ")
        if fault == "no_usage":
            events = _without_usage(events)
            if not stream:
                completion = self._completion(body, reply)
                completion.pop("usage", None)
                return await self._json(writer, 200, completion)
        if fault == "key_split":
            reply = dataclasses.replace(reply, content=f"the header said {key}, which I repeat: {key}.")
            if not stream:
                return await self._json(writer, 200, self._completion(body, reply))
            events = self._events(body, reply)
        lines = [f"data: {e}\n\n" for e in events]
        cut: int | None = None
        if fault in ("drop", "hang_mid_stream", "stream_error", "echo_auth_stream"):
            cut = 2
        elif fault == "drop_after_tool_call":
            cut = next((i + 1 for i, e in enumerate(events) if '"tool_calls"' in e), 2)
        if fault == "stream_error":
            lines = [*lines[:cut], f"data: {json.dumps(_err('server overloaded, please retry'))}\n\n"]
            cut = None
        elif fault == "echo_auth_stream":
            lines = [*lines[:cut], f'data: {{"error": "bad upstream headers", "authorization": "{auth}"\n\n']
            cut = None
        elif cut is not None:
            lines = lines[:cut]
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        data = "".join(lines).encode()
        size = 5 if fault == "key_split" else len(data) or 1
        for i in range(0, len(data), size):
            piece = data[i : i + size]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            if fault == "key_split":
                await writer.drain()
        await writer.drain()
        if fault == "hang_mid_stream":
            await asyncio.sleep(3600)
        if fault in ("drop", "drop_after_tool_call", "hang_mid_stream"):
            writer.transport.abort()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _raw(self, writer: Any, status: int, kind: str, payload: bytes) -> None:
        head = f"HTTP/1.1 {status} OK\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n"
        writer.write(head.encode() + payload)
        await writer.drain()


def _without_usage(events: list[str]) -> list[str]:
    out = []
    for e in events:
        if e == "[DONE]":
            out.append(e)
            continue
        chunk = json.loads(e)
        if not chunk.get("choices") and chunk.get("usage"):
            continue
        chunk["usage"] = None
        out.append(json.dumps(chunk))
    return out


def _tool_then_answer(body: dict[str, Any]) -> Reply:
    """Call the first tool once, then answer with its result."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    if messages and messages[-1].get("role") == "tool":
        return Reply(reasoning="I have the result.", content=f"The tool said: {messages[-1]['content']}")
    if tools:
        return Reply(
            reasoning="I will call the tool.",
            tool_calls=[(tools[0]["function"]["name"], '{"text": "a b c"}')],
        )
    return Reply(reasoning="Nothing to call.", content="Hello.")


# --------------------------------------------------------------------------------------------------------------------
# The fault table: every fault, measured


@dataclass
class FaultRow:
    fault: str
    status: str
    error_type: str | None
    attempts: int
    seconds: float
    tool_executions: int
    key_appeared: bool

    def markdown(self) -> str:
        status = self.status + (f" ({self.error_type})" if self.error_type else "")
        key = "yes" if self.key_appeared else "no"
        return f"| {self.fault} | {status} | {self.attempts} | {self.seconds:.2f} | {self.tool_executions} | {key} |"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        if record.exc_info:
            self.texts.append(logging.Formatter().formatException(record.exc_info))


@contextmanager
def capture_logs() -> Iterator[list[str]]:
    """Every log record of every logger while inside, formatted as a user's handler would."""
    handler = _Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.texts
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def leaked(key: str, *texts: str) -> bool:
    """Whether `key` shows in any text: the key itself when it is long enough to be a secret, its header forms
    (`Bearer key`) at any length."""
    from agentkit.redaction import MIN_SECRET_LENGTH

    needles = [f"Bearer {key}", f"bearer {key}"]
    if len(key) >= MIN_SECRET_LENGTH:
        needles.append(key)
    return any(n in t for t in texts for n in needles)


async def run_fault(
    fault: str,
    *,
    key: str = "sk-faulttable0123456789abcdef0123",
    stream: bool = True,
    retry: Any = None,
    timeout: Any = None,  # noqa: ASYNC109 - the HTTP client's timeouts, not a deadline of this call
    deadline: float | None = None,
    permanent: bool = True,
) -> tuple[FaultRow, Any, list[Any]]:
    """Run a two-turn agent (a tool call, then an answer) against `fault` (on every request when `permanent`, else
    on the first only) and measure it; returns the row, the result and the events."""
    from agentkit import Agent, tool
    from agentkit.backends.remote import RemoteBackend

    executions: list[str] = []

    @tool
    def count_words(text: str) -> int:
        """Count the words of a text."""
        executions.append(text)
        return len(text.split())

    kwargs: dict[str, Any] = {}
    if retry is not None:
        kwargs["retry"] = retry
    if timeout is not None:
        kwargs["timeout"] = timeout
    with capture_logs() as logs, _server(fault, permanent) as base_url:
        backend = RemoteBackend(
            "deepseek", "deepseek-v4-flash", base_url=base_url, api_key=key, stream=stream, **kwargs
        )
        events: list[Any] = []
        started = time.monotonic()
        async with backend:
            async for event in Agent(backend, [count_words], deadline=deadline).stream(
                "How many words in 'a b c'?"
            ):
                events.append(event)
        seconds = time.monotonic() - started
        result = events[-1].result
        texts = [repr(result), str(result), json.dumps(result.to_dict()), repr(backend), str(vars(backend))]
        texts += [repr(e) for e in events] + [str(e) for e in events] + list(logs)
        if result.error:
            texts.append(result.error)
    row = FaultRow(
        fault + ("" if permanent else " (once)") + ("" if stream else ", not streamed"),
        result.status,
        result.error_type,
        result.attempts,
        seconds,
        len(executions),
        leaked(key, *texts),
    )
    return row, result, events


@contextmanager
def _server(fault: str, permanent: bool) -> Iterator[str]:
    if fault == "refuse":
        yield refused_url()
        return
    faults = [fault]
    with FaultServer(faults, then=fault if permanent else "ok", enforce="deepseek-v4") as srv:
        yield srv.base_url


def fault_table(rows: list[FaultRow]) -> str:
    head = "| fault | status returned | attempts made | seconds | tool executions | key appeared anywhere |\n"
    head += "|---|---|---:|---:|---:|---|\n"
    return head + "\n".join(r.markdown() for r in rows)
