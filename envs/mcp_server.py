"""`agentkit mcp serve`: agentkit's tools for any MCP client, over stdio or streamable HTTP.

What is served is a list of agentkit `Tool`s, called exactly as the agent loop calls them (`Tool.invoke` with the
client's arguments, inside a `RunContext`), so a tool behaves the same in an agentkit run and over MCP:

- the sandbox (`--sandbox`): `python`, `shell` (agentkit.sandbox's tools) and `write_file` / `read_file` (its file
  API), all on one sandbox per MCP session, started on first use and removed when the session ends;
- search (`--search stdlib|INDEX`): `agentkit.search.search_tool` over the stdlib docs or an index file;
- an environment (`--tasks FILE --task ID|INDEX`): the tools of ONE task's `Episode(record)`, a fresh episode per
  MCP session, so two clients never share state. The episode's task, state and call log are resources
  (`episode://task`, `episode://state`, `episode://log`) and `episode://verdict?answer=...` scores it.

An MCP session is one stdio connection, or one `Mcp-Session-Id` over HTTP; a stateless HTTP request gets a session of
its own that ends with the request. Sessions idle for `idle_timeout` seconds are ended (their sandboxes removed).
Built on the official SDK's low-level server (`mcp.server.lowlevel.Server`), so input schemas go out unchanged and
validation and errors are agentkit's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkit.envs.runtime import PYTHON_IMPL, Episode, SandboxPython
from agentkit.envs.spec import TaskRecord
from agentkit.errors import ConfigurationError, ToolError
from agentkit.tools import RunContext, Tool, Toolset, reset_current_run, set_current_run, tool

try:
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"`agentkit mcp serve` needs the official MCP SDK ({exc.name} is missing): pip install 'agentkit[mcp]'"
    ) from exc

log = logging.getLogger("agentkit.mcp.serve")

STDIO = "stdio"
EPISODE_RESOURCES = {
    "episode://task": "The task's instruction.",
    "episode://state": "The episode's current state (JSON).",
    "episode://log": "Every tool call of this session and its result (JSON).",
}
VERDICT_TEMPLATE = "episode://verdict{?answer}"


# --------------------------------------------------------------------------------------------------------------------
# What a session sees


def sandbox_file_tools(pool: Any) -> list[Tool]:
    """`write_file` and `read_file` over the same per-run sandbox as `sandbox_tools(pool)` (paths under /work)."""
    from agentkit.sandbox.tool import run_sandbox

    @tool
    async def write_file(path: str, content: str) -> str:
        """Write a text file in the sandbox's working directory (/work), creating its folders.

        Args:
            path: a path relative to /work (or absolute under /work).
            content: the file's text.
        """
        where = await (await run_sandbox(pool)).put_file(path, content)
        return f"wrote {len(content.encode())} bytes to {where}"

    @tool
    async def read_file(path: str) -> str:
        """Read a text file from the sandbox's working directory (/work).

        Args:
            path: a path relative to /work (or absolute under /work).
        """
        data = await (await run_sandbox(pool)).get_file(path)
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise ToolError(f"{path} is not UTF-8 text ({len(data)} bytes)") from None

    return [write_file, read_file]


class _SessionSandbox:
    """The session's sandbox as `SandboxPython` wants it (run_python, put_file), acquired on first use."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def run_python(self, code: str) -> Any:
        from agentkit.sandbox.tool import run_sandbox

        return await (await run_sandbox(self.pool)).run_python(code)

    async def put_file(self, path: str, data: str) -> Any:
        from agentkit.sandbox.tool import run_sandbox

        return await (await run_sandbox(self.pool)).put_file(path, data)


@dataclass
class Session:
    """One MCP session's state: its run context (its sandbox lives there) and its own episode."""

    key: str
    run: RunContext = field(default_factory=RunContext)
    episode: Episode | None = None
    toolset: Toolset = field(default_factory=Toolset)
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def aclose(self) -> None:
        for exc in await self.run.aclose():
            log.warning("session %s: a cleanup failed: %s", self.key, exc)


class AgentkitMCPServer:
    """Serves `tools` (shared definitions; state per session) and, with `record`, one task's episode per session.

    `pool` is the sandbox pool behind the sandbox tools (closed with the server) and the environment's python tool.
    """

    def __init__(
        self,
        tools: Sequence[Tool] = (),
        *,
        record: TaskRecord | None = None,
        pool: Any = None,
        name: str = "agentkit",
        idle_timeout: float = 1800.0,
    ) -> None:
        self.tools = list(tools)
        self.record = record
        self.pool = pool
        self.idle_timeout = idle_timeout
        self.sessions: dict[str, Session] = {}
        names = [t.name for t in self.tools] + ([t.name for t in record.environment.tools] if record else [])
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigurationError(f"tool names served twice: {', '.join(twice)} (drop one of the tool groups)")
        if not names:
            raise ConfigurationError("nothing to serve: pass --sandbox, --search and/or --tasks with --task")
        listed = self.tools + (Episode(record).tools() if record is not None else [])
        self._listed = [types.Tool(name=t.name, description=t.description, input_schema=t.parameters) for t in listed]
        instructions = f"Task: {record.task.instruction}" if record is not None else None
        self.server: Server[Any] = Server(
            name,
            instructions=instructions,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources if record is not None else None,
            on_list_resource_templates=self._list_templates if record is not None else None,
            on_read_resource=self._read_resource if record is not None else None,
        )

    # -- sessions ------------------------------------------------------------------------------------------------------

    def _new_session(self, key: str) -> Session:
        session = Session(key)
        tools = list(self.tools)
        if self.record is not None:
            needs_python = any(t.impl == PYTHON_IMPL for t in self.record.environment.tools)
            python = SandboxPython(_SessionSandbox(self.pool)) if needs_python and self.pool is not None else None
            session.episode = Episode(self.record, python=python)
            tools += session.episode.tools()
        session.toolset = Toolset(tools)
        return session

    @contextlib.asynccontextmanager
    async def _session(self, ctx: Any) -> Any:
        """The caller's session (made on first use); a request without one gets a session of its own."""
        await self._sweep()
        request = getattr(ctx, "request", None)
        if request is None:
            key: str | None = STDIO
        else:
            key = request.headers.get("mcp-session-id")
        if key is None:
            once = self._new_session(f"stateless-{id(ctx)}")
            try:
                yield once
            finally:
                await once.aclose()
            return
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = self._new_session(key)
        session.last_used = time.monotonic()
        yield session
        session.last_used = time.monotonic()

    async def _sweep(self) -> None:
        now = time.monotonic()
        for key, session in list(self.sessions.items()):
            if key != STDIO and now - session.last_used > self.idle_timeout and not session.lock.locked():
                del self.sessions[key]
                await session.aclose()

    async def aclose(self) -> None:
        """End every session (removing their sandboxes), then the pool."""
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.aclose()
        if self.pool is not None:
            await self.pool.close()

    # -- tools ---------------------------------------------------------------------------------------------------------

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._listed)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        async with self._session(ctx) as session, session.lock:
            # The calls of one session run one at a time, as an episode's calls do in an agent's turn order.
            token = set_current_run(session.run)
            try:
                out = await session.toolset.call(params.name, params.arguments or {})
            finally:
                reset_current_run(token)
        return types.CallToolResult(content=[types.TextContent(text=out.content)], is_error=out.is_error)

    # -- the episode as resources --------------------------------------------------------------------------------------

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=uri, name=uri.removeprefix("episode://"), description=text,
                           mime_type="text/plain" if uri.endswith("task") else "application/json")
            for uri, text in EPISODE_RESOURCES.items()
        ])  # fmt: skip

    async def _list_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
            uri_template=VERDICT_TEMPLATE, name="verdict", mime_type="application/json",
            description="Score the episode with ANSWER (the final answer; omit it for none): passed and failures.",
        )])  # fmt: skip

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        async with self._session(ctx) as session:
            text = episode_resource(session.episode, uri)
        mime = "text/plain" if uri == "episode://task" else "application/json"
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text, mime_type=mime)])

    # -- transports ----------------------------------------------------------------------------------------------------

    async def run_stdio(self) -> None:
        try:
            async with stdio_server() as (read, write):
                await self.server.run(read, write, self.server.create_initialization_options())
        finally:
            await self.aclose()

    async def run_http(self, host: str = "127.0.0.1", port: int = 8000, path: str = "/mcp") -> None:
        import uvicorn

        app = self.server.streamable_http_app(streamable_http_path=path, host=host,
                                              session_idle_timeout=self.idle_timeout)  # fmt: skip
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
        try:
            await server.serve()
        finally:
            await self.aclose()


def episode_resource(episode: Episode | None, uri: str) -> str:
    """The text of one `episode://` resource."""
    if episode is None:
        raise ValueError("no environment is served: start the server with --tasks and --task")
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "episode":
        raise ValueError(f"unknown resource {uri!r}")
    if parsed.netloc == "task":
        return episode.record.task.instruction
    if parsed.netloc == "state":
        return json.dumps(episode.state, ensure_ascii=False, sort_keys=True)
    if parsed.netloc == "log":
        return json.dumps([vars(c) for c in episode.log], ensure_ascii=False)
    if parsed.netloc == "verdict":
        answer = urllib.parse.parse_qs(parsed.query).get("answer", [None])[0]
        verdict = episode.score(answer)
        return json.dumps({"passed": verdict.passed, "failures": verdict.failures}, ensure_ascii=False)
    raise ValueError(f"unknown resource {uri!r}: episode://task, state, log or verdict?answer=...")


def pick_task(records: Sequence[TaskRecord], which: str) -> TaskRecord:
    """A task by its id, else by its 0-based index among the file's valid tasks."""
    for record in records:
        if record.task.task_id == which:
            return record
    if which.isdigit() and int(which) < len(records):
        return records[int(which)]
    raise ConfigurationError(
        f"no task {which!r}: give a task id or an index below {len(records)} (`agentkit envs show FILE --index N`)"
    )
