"""The `agentkit` command. Sub-commands of other packages (sandbox, search, envs, serve, ...) are registered lazily,
so `agentkit --help` never imports torch or docker.

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
from typing import Any

from agentkit.errors import AgentkitError, ConfigurationError

EXIT_CODES = {"completed": 0, "error": 1, "max_turns": 3, "deadline": 4, "cancelled": 130}

# Packages that add their own sub-command groups: (module, description). Missing ones are skipped quietly.
_PLUGINS = ["tools.sandbox.cli", "tools.search.cli", "envs.cli", "envs.eval_cli", "model_backend.cli", "model_backend.local.cli"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentkit", description="Agentic tool use in the style of DeepSeek-V3.2.")
    parser.add_argument("--version", action="version", version="agentkit 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run an agent on a task and stream what it does")
    run.add_argument("task", help="the task, in natural language")
    add_backend_arguments(run)
    run.add_argument("--tool", action="append", default=[], metavar="NAME",
                     help="python | shell | search | MODULE:FUNC (repeatable)")  # fmt: skip
    run.add_argument("--system", default=None, help="system prompt")
    run.add_argument("--max-turns", type=int, default=20)
    run.add_argument("--deadline", type=float, default=None, help="wall-clock budget of the run, seconds")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON instead of streaming")
    run.add_argument("--no-reasoning", action="store_true", help="do not print the model's reasoning")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="the main job, offline: see the README")
    demo.set_defaults(func=cmd_demo)

    for module in _PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that package is not part of this install
            raise
        register = getattr(mod, "register", None)
        if register is not None:
            register(sub)
    return parser


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", default=os.environ.get("AGENTKIT_PROVIDER", "deepseek"),
                   help="deepseek | openai | vllm | sglang | openrouter | ollama | local (default: $AGENTKIT_PROVIDER or deepseek)")  # fmt: skip
    p.add_argument("--model", default=os.environ.get("AGENTKIT_MODEL"), help="model id (default: the provider's)")
    p.add_argument("--base-url", default=None, help="server URL (default: the provider's, or its *_BASE_URL variable)")
    p.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="switch thinking on/off (default: the model's own default)")  # fmt: skip


def make_backend(args: argparse.Namespace) -> Any:
    """A backend from CLI arguments; the local model is imported only when asked for."""
    if args.provider == "local":
        from model_backend.local.backend import LocalDSABackend  # noqa: PLC0415 - torch only on demand

        return LocalDSABackend(args.model) if args.model else LocalDSABackend()
    from model_backend.remote import RemoteBackend  # noqa: PLC0415

    return RemoteBackend(args.provider, args.model, base_url=args.base_url)


def resolve_tool(spec: str) -> Any:
    """`python`, `shell`, `search`, or `package.module:function` (a Tool or a typed function)."""
    from agentkit.tools import Tool, tool  # noqa: PLC0415

    if spec == "python":
        from tools.sandbox import python_tool  # noqa: PLC0415

        return python_tool()
    if spec == "shell":
        from tools.sandbox import shell_tool  # noqa: PLC0415

        return shell_tool()
    if spec == "search":
        from tools.search import default_search_tool  # noqa: PLC0415

        return default_search_tool()
    module, sep, attr = spec.partition(":")
    if not sep:
        raise ConfigurationError(f"unknown tool {spec!r}: use python, shell, search or MODULE:FUNC")
    try:
        obj: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load tool {spec!r}: {exc}") from exc
    return obj if isinstance(obj, Tool) else tool(obj)


def cmd_run(args: argparse.Namespace) -> int:
    from agentkit.console import EventPrinter, result_json  # noqa: PLC0415
    from agentkit.events import Final  # noqa: PLC0415
    from agentkit.loop import Agent  # noqa: PLC0415

    backend = make_backend(args)
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
    from agentkit.demo import main as demo_main  # noqa: PLC0415

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
