"""A real OpenAI/DeepSeek-compatible HTTP server on 127.0.0.1 that answers from a script.

Tests, examples and benchmarks drive agents against it instead of a mock: requests cross a real socket, responses are
real SSE over chunked HTTP/1.1, and the wire faults a client must survive are reproducible (chunks split inside a UTF-8
character or between CR and LF, keep-alive comments, a usage-only final chunk, an error inside the stream, a stream cut
before `[DONE]`, 429 with Retry-After, 5xx).

Like the real DeepSeek API, the server can enforce the thinking-mode rule for `reasoning_content` on every request it
receives (`enforce=`), answering HTTP 400 with DeepSeek's own error text when an assistant message lacks a reasoning it
must carry, or carries one it must not. The rule is written out plainly here, independent of `agentkit.messages`, so a
wrong `to_wire` fails the way the real API would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Enforce = Literal["deepseek-v3.2", "deepseek-v4", "never"]


@dataclass
class Reply:
    """One scripted model response. `tool_calls` are (name, arguments-json-text) pairs."""

    reasoning: str | None = None
    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    cut_after: int | None = None  # close the connection after this many SSE events (a stream that dies)
    error_after: int | None = None  # send an error object inside the stream after this many events


@dataclass
class Fail:
    """An HTTP error answer."""

    status: int
    message: str
    retry_after: str | None = None


Script = list[Reply | Fail] | Callable[[dict[str, Any]], Reply | Fail]


@dataclass
class ServerOptions:
    reasoning_field: str = "reasoning_content"
    piece: int = 7  # characters of text per delta
    split_bytes: int | None = None  # re-split the byte stream into chunks of this size (boundaries anywhere)
    crlf: bool = False
    keepalive: bool = False
    usage_chunk: bool = True  # usage in a final chunk with empty `choices` (OpenAI include_usage style)
    interleave_tool_calls: bool = False
    api_key: str | None = None
    enforce: Enforce | None = None
    latency: float = 0.0  # seconds to wait before answering (a slow model)


def reasoning_violation(messages: list[dict[str, Any]], rule: Enforce, field_name: str) -> str | None:
    """DeepSeek's 400 text if `messages` break the reasoning rule, else None."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    turn_of, turn = [], -1
    for m in messages:
        if m.get("role") == "user":
            turn += 1
        turn_of.append(turn)
    tool_turns = {turn_of[i] for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("tool_calls")}
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        has = field_name in m and m[field_name] is not None
        if rule == "deepseek-v3.2":
            must = i > last_user
        elif rule == "deepseek-v4":
            must = turn_of[i] in tool_turns
        else:
            must = False
        if must and not has:
            if rule == "deepseek-v4":
                return "The reasoning_content in the thinking mode must be passed back to the API."
            return (
                f"Missing `{field_name}` field in the assistant message at message index {i}. For more information, "
                "please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"
            )
        if has and not must:
            return f"Unexpected `{field_name}` in the assistant message at message index {i} (test server: strict mode)"
    return None


_ROLES = ("system", "user", "assistant", "tool")


def deepseek_request_violation(body: dict[str, Any], rule: Enforce) -> str | None:
    """What DeepSeek's API refuses besides the reasoning rule: roles it does not know (`developer`), an assistant
    message without content and without tool calls, a tool result that is not a string, and (V4) a reasoning_effort
    other than low/high/max."""
    for i, m in enumerate(body.get("messages") or []):
        role = m.get("role")
        if role not in _ROLES:
            return (
                f"Failed to deserialize the JSON body into the target type: messages[{i}]: unknown variant "
                f"`{role}`, expected one of `system`, `user`, `assistant`, `tool`"
            )
        if role == "assistant" and not m.get("tool_calls") and not isinstance(m.get("content"), str):
            return f"messages[{i}]: an assistant message without tool_calls needs a string content"
        if role == "tool" and not isinstance(m.get("content"), str):
            return f"messages[{i}]: a tool message needs a string content"
    effort = body.get("reasoning_effort")
    if rule == "deepseek-v4" and effort is not None and effort not in ("low", "high", "max"):
        return f"reasoning_effort must be one of low, high, max (got {effort!r})"
    return None


def _structure_violation(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's rule: every tool message answers a call of the assistant message before it, and every call is answered."""
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                return f"messages[{i}]: a 'tool' message must answer a preceding assistant 'tool_calls' id"
            open_calls.discard(m["tool_call_id"])
            continue
        if open_calls:
            return f"messages[{i}]: tool calls {sorted(open_calls)} have no tool message"
        if role == "assistant":
            open_calls = {c["id"] for c in m.get("tool_calls") or []}
    return None


class ScriptedServer:
    """Runs in a background thread with its own event loop; use as a context manager. `requests` holds every body."""

    def __init__(self, script: Script, options: ServerOptions | None = None, **kwargs: Any) -> None:
        self.options = options or ServerOptions(**kwargs)
        self._script = script
        self._position = 0
        self.requests: list[dict[str, Any]] = []
        self.server_time = 0.0  # seconds spent producing responses (benchmarks subtract it)
        self.connections = 0  # TCP connections accepted (a client that pools connections opens one)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def __enter__(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self._run, name="scripted-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

    def next_reply(self, body: dict[str, Any]) -> Reply | Fail:
        if callable(self._script):
            return self._script(body)
        if self._position >= len(self._script):
            return Fail(500, "test server: the script has no more replies")
        reply = self._script[self._position]
        self._position += 1
        return reply

    # -- HTTP ---------------------------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep = await self._respond(method, path, headers, body, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        started = time.perf_counter()
        opts = self.options
        if method == "GET" and path.endswith("/_stats"):  # for benchmarks that run the server in another process
            stats = {"server_time": self.server_time, "requests": len(self.requests), "connections": self.connections}
            return await self._json(writer, 200, stats)
        if method == "GET" and path.endswith("/models"):
            return await self._json(writer, 200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        if method != "POST" or not path.endswith("/chat/completions"):
            return await self._json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
        if opts.api_key is not None and headers.get("authorization") != f"Bearer {opts.api_key}":
            return await self._json(writer, 401, _err("Authentication Fails, Your api key is invalid", "authentication_error"))
        try:
            body = json.loads(raw)
        except ValueError:
            return await self._json(writer, 400, _err("request body is not JSON"))
        self.requests.append(body)
        messages = body.get("messages") or []
        problem = _structure_violation(messages)
        if problem is None and opts.enforce in ("deepseek-v3.2", "deepseek-v4"):
            problem = deepseek_request_violation(body, opts.enforce)
        if problem is None and opts.enforce is not None:
            problem = reasoning_violation(messages, opts.enforce, opts.reasoning_field)
        if problem is None and opts.enforce is not None and opts.enforce != "never" and body.get("tool_choice") not in (None, "auto", "none"):
            problem = "deepseek-reasoner does not support this tool_choice"
        if problem is not None:
            return await self._json(writer, 400, _err(problem))
        reply = self.next_reply(body)
        if opts.latency:
            await asyncio.sleep(opts.latency)
        if isinstance(reply, Fail):
            extra = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            return await self._json(writer, reply.status, _err(reply.message), extra)
        if not body.get("stream"):
            keep = await self._json(writer, 200, self._completion(body, reply))
            self.server_time += time.perf_counter() - started
            return keep
        return await self._stream(writer, body, reply, started)

    async def _json(
        self, writer: asyncio.StreamWriter, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> bool:
        data = json.dumps(payload).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n".encode()
            + data
        )
        await writer.drain()
        return True

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, Any], reply: Reply, started: float) -> bool:
        opts = self.options
        nl = "\r\n" if opts.crlf else "\n"
        events = self._events(body, reply)
        payload = bytearray()
        if opts.keepalive:
            payload += f": keep-alive{nl}{nl}".encode()
        for n, event in enumerate(events):
            if reply.cut_after is not None and n >= reply.cut_after:
                break
            if reply.error_after is not None and n == reply.error_after:
                payload += f"data: {json.dumps(_err('server overloaded, please retry'))}{nl}{nl}".encode()
                break
            payload += f"data: {event}{nl}{nl}".encode()
            if opts.keepalive and n % 3 == 0:
                payload += f": ping{nl}".encode() + nl.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        size = opts.split_bytes or len(payload) or 1
        for i in range(0, len(payload), size):
            piece = bytes(payload[i : i + size])
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.server_time += time.perf_counter() - started
        if reply.cut_after is not None:
            await writer.drain()
            writer.transport.abort()  # the connection dies mid-stream, no terminating chunk
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    # -- payloads -----------------------------------------------------------------------------------------------------

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        if reply.usage is not None:
            return reply.usage
        prompt = sum(len(json.dumps(m)) for m in body.get("messages", [])) // 4
        reasoning = len(reply.reasoning or "") // 4
        completion = reasoning + len(reply.content or "") // 4 + sum(len(a) // 4 + 5 for _, a in reply.tool_calls)
        hit = (prompt // 64) * 64 // 2
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": hit},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
            "prompt_cache_hit_tokens": hit,
            "prompt_cache_miss_tokens": prompt - hit,
        }

    def _events(self, body: dict[str, Any], reply: Reply) -> list[str]:
        opts, rf = self.options, self.options.reasoning_field
        cid, created, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time()), body.get("model", "scripted")

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None, choices: bool = True) -> str:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
                   "usage": usage}  # fmt: skip
            return json.dumps(obj, ensure_ascii=False)

        out = [chunk({"role": "assistant", "content": None, rf: ""})]
        for piece in _pieces(reply.reasoning, opts.piece):
            out.append(chunk({"content": None, rf: piece}))
        for piece in _pieces(reply.content, opts.piece):
            out.append(chunk({"content": piece, rf: None}))
        streams = []
        for i, (name, args) in enumerate(reply.tool_calls):
            call_id = f"call_{i:02d}_{uuid.uuid4().hex[:24]}"
            frags = [{"index": i, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]
            frags += [{"index": i, "function": {"arguments": p}} for p in _pieces(args, opts.piece)]
            streams.append(frags)
        if opts.interleave_tool_calls:
            while any(streams):
                for s in streams:
                    if s:
                        out.append(chunk({"tool_calls": [s.pop(0)]}))
        else:
            for s in streams:
                out += [chunk({"tool_calls": [f]}) for f in s]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        usage = self._usage(body, reply)
        if opts.usage_chunk:
            out.append(chunk({}, finish))
            out.append(chunk({}, None, usage, choices=False))
        else:
            out.append(chunk({"content": ""}, finish, usage))
        out.append("[DONE]")
        return out

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or ("" if not reply.tool_calls else None)}
        if reply.reasoning is not None:
            message[self.options.reasoning_field] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {"index": i, "id": f"call_{i:02d}_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(reply.tool_calls)
            ]  # fmt: skip
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")}
            ],
            "usage": self._usage(body, reply),
        }


def _pieces(text: str | None, size: int) -> list[str]:
    if not text:
        return []
    return [text[i : i + size] for i in range(0, len(text), size)]


def _err(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


# --------------------------------------------------------------------------------------------------------------------
# A generic script: call the first tool with arguments made from its schema, then answer with what came back.


def example_value(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A plausible value for a JSON Schema (enough to drive a tool in tests and examples)."""
    defs = defs or {}
    if "$ref" in schema:
        return example_value(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return example_value(schema[key][0], defs)
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_value(v, defs) for k, v in props.items() if k in schema.get("required", props)}
    return {"string": "example", "integer": 2, "number": 1.5, "boolean": True, "array": [], "null": None}.get(kind)


def auto_script(body: dict[str, Any]) -> Reply:
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        results = [m["content"] for m in messages if m.get("role") == "tool"]
        return Reply(reasoning="I have what I need.", content=f"Done. The tool said: {results[-1]}")
    if tools:
        fn = tools[0]["function"]
        params = fn.get("parameters", {})
        args = example_value(params, params.get("$defs"))
        return Reply(reasoning=f"I will call {fn['name']}.", tool_calls=[(fn["name"], json.dumps(args))])
    return Reply(reasoning="A greeting is enough.", content="Hello from the scripted server.")
