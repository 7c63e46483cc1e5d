"""`agentkit mcp serve`: the sandbox, search and an environment's tools for any MCP client (agentkit.envs.mcp_server).

Registered through the `agentkit.commands` entry-point group; the MCP SDK, Docker and the server module are imported
only when the command runs.

Exit codes: 0 the client disconnected (stdio) or the server was stopped, 2 bad usage or configuration (a missing
task file or task, nothing to serve, the MCP SDK not installed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from agentkit.errors import AgentkitError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "mcp", help="serve agentkit's tools to MCP clients",
        description="Exit codes: 0 stopped, 2 bad usage or configuration, 130 interrupted.",
    )  # fmt: skip
    sub = p.add_subparsers(dest="agentkit.mcp_command", required=True)
    s = sub.add_parser(
        "serve", help="the sandbox, search and an environment's tools over stdio or streamable HTTP",
        description="Serve agentkit tools over MCP. Each MCP session (a stdio connection, an HTTP Mcp-Session-Id) "
        "gets its own sandbox and its own episode of the task. Exit codes: 0 stopped, 2 bad usage, 130 interrupted.",
    )  # fmt: skip
    s.add_argument("--sandbox", action="store_true", help="python, shell, write_file and read_file in a Docker sandbox")
    s.add_argument("--search", metavar="stdlib|INDEX", default=None,
                   help="a search tool over the stdlib docs or an index file (agentkit search index)")  # fmt: skip
    s.add_argument("--tasks", metavar="FILE", default=None, help="a task set (JSONL, agentkit envs generate)")
    s.add_argument("--task", metavar="ID|INDEX", default=None, help="the task whose tools are served (with --tasks)")
    s.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--path", default="/mcp", help="the HTTP endpoint's path (default /mcp)")
    s.add_argument("--idle-timeout", type=float, default=1800.0,
                   help="seconds after which an idle HTTP session ends (default 1800)")  # fmt: skip
    s.set_defaults(func=cmd_serve)


def build(args: argparse.Namespace) -> Any:
    """The server for these arguments (raises ConfigurationError / EvalError for a bad one)."""
    from agentkit.envs.mcp_server import AgentkitMCPServer, pick_task, sandbox_file_tools  # noqa: PLC0415
    from agentkit.errors import ConfigurationError  # noqa: PLC0415

    tools: list[Any] = []
    pool = None
    record = None
    if (args.tasks is None) != (args.task is None):
        raise ConfigurationError("--tasks and --task go together: the file and the task whose tools are served")
    if args.sandbox or args.tasks is not None:
        from agentkit.sandbox import SandboxPool, sandbox_tools  # noqa: PLC0415

        pool = SandboxPool(size=0)
        if args.sandbox:
            tools += sandbox_tools(pool) + sandbox_file_tools(pool)
    if args.search is not None:
        from agentkit.search import default_search_tool, search_tool  # noqa: PLC0415

        tools.append(default_search_tool() if args.search == "stdlib" else search_tool(args.search))
    if args.tasks is not None:
        from agentkit.envs.eval import load_tasks  # noqa: PLC0415

        record = pick_task(load_tasks(args.tasks), args.task)
    return AgentkitMCPServer(tools, record=record, pool=pool, idle_timeout=args.idle_timeout)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        server = build(args)
    except ImportError as exc:
        print(f"agentkit mcp serve: {exc}", file=sys.stderr)
        return 2
    except AgentkitError as exc:
        print(f"agentkit mcp serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.http:
            print(f"agentkit mcp serve: http://{args.host}:{args.port}{args.path}", file=sys.stderr)
            asyncio.run(server.run_http(args.host, args.port, args.path))
        else:
            asyncio.run(server.run_stdio())
    except KeyboardInterrupt:
        return 130
    return 0
