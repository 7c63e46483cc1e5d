"""MCP servers as agentkit tools: `MCPServerStdio` (a subprocess) and `MCPServerHTTP` (streamable HTTP).

Each is a `ToolSource`: `Agent(tools=[server, my_function])` starts it when a run starts, lists its tools once per run
(again when the server says its list changed), calls them with the model's arguments and stops it when the run ends.
`async with server:` keeps it up across runs instead (it counts its users). Built on the official `mcp` SDK.

The SDK's session lives in one background task of its own, from connect to close, so its task group is entered and
left in the same task whatever task the agent runs in; tool calls talk to it through the session's streams. A call
that times out, a server that dies or answers nonsense ends that call with an error result the model reads, never
the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TextIO

from agentkit.errors import ToolError
from agentkit.tools import DEFAULT_MAX_OUTPUT_CHARS, Tool, describe_exception

log = logging.getLogger("agentkit.mcp")

try:
    import mcp.types as mcp_types
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"agentkit.mcp needs the official MCP SDK ({exc.name} is missing): pip install 'agentkit[mcp]'"
    ) from exc

Streams = tuple[Any, Any]


class MCPServer:
    """The common part of both transports; subclasses say how to open the connection (`_transport`).

    `timeout` caps each tool call (seconds), `connect_timeout` the start and handshake. `tool_prefix` is put before
    every tool name (`"fs_"` → `fs_read_file`) when two servers name tools alike. `max_output_chars` caps each result.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 30.0,
        tool_prefix: str = "",
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tool_prefix = tool_prefix
        self.max_output_chars = max_output_chars
        self.tools_changed = False
        self.list_calls = 0  # how often the tools were listed, and the server started (tests and curious users)
        self.starts = 0
        self._users = 0
        self._lock = asyncio.Lock()
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    # -- lifetime -----------------------------------------------------------------------------------------------------

    def _transport(self) -> AbstractAsyncContextManager[Streams]:
        raise NotImplementedError

    async def acquire(self) -> None:
        """Start the server for one more user (the first one starts it)."""
        async with self._lock:
            if self._users == 0 or not self.running:
                await self._start()
            self._users += 1

    async def release(self) -> None:
        """One user less; the last one stops the server."""
        async with self._lock:
            self._users = max(self._users - 1, 0)
            if self._users == 0:
                await self._shutdown()

    async def __aenter__(self) -> MCPServer:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and self._session is not None

    async def _start(self) -> None:
        await self._shutdown()
        self.starts += 1
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._serve(ready, self._stop), name=f"mcp-{self.name}")
        try:
            async with asyncio.timeout(self.connect_timeout):
                done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await self._shutdown()
            raise ToolError(f"MCP server {self.name!r} did not answer the handshake within {self.connect_timeout:g} s") from None
        if ready not in done:
            exc = _task_error(self._task)
            self._task = None
            raise ToolError(f"MCP server {self.name!r} could not start: {_why(exc)}")
        self._session = ready.result()

    async def _serve(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        async with self._transport() as (read, write), ClientSession(read, write, message_handler=self._on_message) as session:
            await session.initialize()
            ready.set_result(session)
            await stop.wait()

    async def _shutdown(self) -> None:
        task, self._task, self._session = self._task, None, None
        if task is None:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 5.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except BaseException as exc:  # noqa: BLE001 - a server that crashed earlier has nothing left to stop
            log.debug("MCP server %r ended with %s", self.name, describe_exception(exc))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self.tools_changed = True
        elif isinstance(message, Exception):
            log.warning("MCP server %r sent something unreadable: %s", self.name, describe_exception(message))

    # -- tools --------------------------------------------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """The server's tools now, as agentkit tools (all pages)."""
        session = self._live_session()
        self.tools_changed = False
        self.list_calls += 1
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self._guarded(session.list_tools(params=params), self.connect_timeout)
            for t in page.tools:
                tools.append(self._tool(t))
            cursor = page.next_cursor
            if not cursor:
                return tools

    def _tool(self, spec: Any) -> Tool:
        remote = spec.name

        async def call(**arguments: Any) -> str:
            return await self.call_tool(remote, arguments)

        schema = dict(spec.input_schema or {})
        schema.setdefault("type", "object")
        return Tool.from_schema(
            f"{self.tool_prefix}{remote}",
            spec.description or "",
            schema,
            call,
            timeout=self.timeout,
            max_output_chars=self.max_output_chars,
        )

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Call one tool; its text, or `ToolError` with what went wrong (the loop shows it to the model)."""
        session = self._live_session()
        try:
            result = await self._guarded(
                session.call_tool(name, arguments, read_timeout_seconds=self.timeout), self.timeout
            )
        except ToolError:
            raise
        except TimeoutError:
            raise ToolError(f"MCP tool {name!r} of server {self.name!r} timed out after {self.timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - an MCP error, a malformed answer: this call's failure
            if "connection closed" in str(exc).lower():
                self._session = None  # the server is gone: the next run (or acquire) starts it again
            raise ToolError(f"MCP tool {name!r} of server {self.name!r} failed: {_why(exc)}") from None
        text = render_call_result(result)
        if getattr(result, "is_error", False):
            raise ToolError(text)
        return text

    def _live_session(self) -> ClientSession:
        if not self.running:
            reason = ""
            if self._task is not None and self._task.done() and not self._task.cancelled():
                reason = f" ({_why(self._task.exception())})"
            raise ToolError(f"MCP server {self.name!r} is not running{reason}; its tools cannot be called now")
        assert self._session is not None
        return self._session

    async def _guarded(self, coro: Any, limit: float) -> Any:
        """Await `coro` unless the server's task ends first (a crash) or `limit` seconds pass."""
        assert self._task is not None
        call = asyncio.ensure_future(coro)
        try:
            async with asyncio.timeout(limit):
                done, _ = await asyncio.wait({call, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not call.done():
                call.cancel()
                with contextlib.suppress(BaseException):
                    await call
        if call not in done:
            raise ToolError(f"MCP server {self.name!r} stopped during the call: {_why(_task_error(self._task))}")
        return call.result()


class MCPServerStdio(MCPServer):
    """An MCP server run as a subprocess speaking JSON-RPC over its stdin/stdout. Its stderr goes to `errlog`."""

    def __init__(
        self,
        command: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        *,
        cwd: str | None = None,
        name: str | None = None,
        errlog: TextIO | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name or command.rsplit("/", 1)[-1], **options)
        self.params = StdioServerParameters(command=command, args=list(args or []), env=env, cwd=cwd)
        self.errlog = errlog

    def _transport(self) -> AbstractAsyncContextManager[Streams]:
        return stdio_client(self.params, errlog=self.errlog or sys.stderr)


class MCPServerHTTP(MCPServer):
    """An MCP server at a streamable-HTTP endpoint (`http://host:port/mcp`); `headers` go with every request."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, *, name: str | None = None, **options: Any):
        super().__init__(name or url, **options)
        self.url = url
        self.headers = dict(headers or {})

    def __repr__(self) -> str:  # headers may hold a key: never shown
        return f"MCPServerHTTP({self.url!r})"

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Streams]:  # type: ignore[override]
        async with (
            create_mcp_http_client(headers=self.headers) as client,
            streamable_http_client(self.url, http_client=client) as streams,
        ):
            yield streams[0], streams[1]


# --------------------------------------------------------------------------------------------------------------------
# Results


def render_call_result(result: Any) -> str:
    """An MCP tool result as the text a model reads: text blocks as they are, structured content as JSON where no
    text says it, images and audio as a short note, resources by their text or URI."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]")
        elif kind == "resource":
            res = block.resource
            parts.append(getattr(res, "text", None) or f"[resource {res.uri}, {getattr(res, 'mime_type', None) or 'binary'}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{kind or type(block).__name__} content, not shown]")
    structured = getattr(result, "structured_content", None)
    if structured is not None and not parts:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join(parts)


def _task_error(task: asyncio.Task[Any] | None) -> BaseException | None:
    if task is None or not task.done() or task.cancelled():
        return None
    return task.exception()


def _why(exc: BaseException | None) -> str:
    """The innermost meaningful error of an exception group (anyio wraps a task's failure in groups)."""
    if exc is None:
        return "the server ended"
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
