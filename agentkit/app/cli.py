"""The `agentkit` command. Sub-command groups of the other packages (sandbox, search, envs, eval, serve, local) are
found through the `agentkit.commands` entry-point group and import their heavy parts only when run, so
`agentkit --help` never imports torch or docker.

Exit codes: 0 completed, 1 backend or tool failure, 2 bad usage or configuration, 3 max_turns reached,
4 deadline reached, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from agentkit import __version__
from agentkit.backends.options import add_backend_arguments, backend_from_args
from agentkit.errors import AgentkitError, ConfigurationError

EXIT_CODES = {"completed": 0, "error": 1, "max_turns": 3, "deadline": 4, "cancelled": 130}

# Sub-command groups register themselves through this entry-point group (pyproject.toml); a plugin package of a
# user's can add its own. A group whose module cannot be imported (an extra not installed) is skipped.
COMMAND_GROUP = "agentkit.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentkit", description="Agentic tool use in the style of DeepSeek-V3.2.")
    parser.add_argument("--version", action="version", version=f"agentkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run an agent on a task and stream what it does")
    run.add_argument("task", help="the task, in natural language")
    add_backend_arguments(run)
    run.add_argument("--tool", action="append", default=[], metavar="NAME",
                     help="python | shell | search | ask_user | MODULE:FUNC (repeatable)")  # fmt: skip
    run.add_argument("--system", default=None, help="system prompt")
    run.add_argument("--max-turns", type=int, default=20)
    run.add_argument("--deadline", type=float, default=None, help="wall-clock budget of the run, seconds")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON instead of streaming")
    run.add_argument("--no-reasoning", action="store_true", help="do not print the model's reasoning")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="the main job, offline: see the README")
    demo.set_defaults(func=cmd_demo)

    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:
            if exc.name and entry.value.startswith(exc.name):
                continue  # that part is not in this install
            raise
        register(sub)
    return parser


def resolve_tool(spec: str) -> Any:
    """`python`, `shell`, `search`, `ask_user`, or `package.module:function` (a Tool or a typed function)."""
    from agentkit.tools import Tool, tool  # noqa: PLC0415

    if spec == "python":
        from agentkit.sandbox import python_tool  # noqa: PLC0415

        return python_tool()
    if spec == "shell":
        from agentkit.sandbox import shell_tool  # noqa: PLC0415

        return shell_tool()
    if spec == "ask_user":
        from agentkit.app.ask_user import ask_user_tool  # noqa: PLC0415

        return ask_user_tool()
    if spec == "search":
        from agentkit.search import default_search_tool  # noqa: PLC0415

        return default_search_tool()
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ConfigurationError(f"unknown tool {spec!r}: use python, shell, search, ask_user or MODULE:FUNC")
    try:
        obj: Any = getattr(_import_from_cwd(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load tool {spec!r}: {exc}") from exc
    return obj if isinstance(obj, Tool) else tool(obj)


def _import_from_cwd(module: str) -> Any:
    """Import a user's module the way `python -m` would: the current directory is searched first. The console
    script's sys.path starts with its own bin directory, so without this `--tool my_tools:f` only worked with
    PYTHONPATH=. set. Our own modules are already imported under `agentkit.…`, so a user's `tools.py` cannot
    shadow them."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    finally:
        if added:
            sys.path.remove(cwd)


def cmd_run(args: argparse.Namespace) -> int:
    from agentkit.console import EventPrinter, result_json  # noqa: PLC0415
    from agentkit.events import Final  # noqa: PLC0415
    from agentkit.loop import Agent  # noqa: PLC0415

    backend = backend_from_args(args)
    tools = [resolve_tool(t) for t in args.tool]
    agent = Agent(backend, tools, system_prompt=args.system, thinking=args.thinking, max_turns=args.max_turns,
                  deadline=args.deadline)  # fmt: skip
    printer = EventPrinter(show_reasoning=not args.no_reasoning)

    async def main() -> Any:
        result = None
        try:
            async for event in agent.stream(args.task):
                if isinstance(event, Final):
                    result = event.result
                if not args.json:
                    printer(event)
        finally:
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()
        return result

    try:
        result = asyncio.run(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the model stream and running tools were stopped", file=sys.stderr)
        return 130
    if args.json:
        print(result_json(result))
    return EXIT_CODES.get(result.status, 1)


def cmd_demo(args: argparse.Namespace) -> int:
    from agentkit.app.demo import main as demo_main  # noqa: PLC0415

    return demo_main()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except ConfigurationError as exc:
        print(f"agentkit: {exc}", file=sys.stderr)
        return 2
    except AgentkitError as exc:
        print(f"agentkit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
