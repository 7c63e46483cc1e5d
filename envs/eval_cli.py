"""`agentkit eval`: run an agent over a task set; `agentkit eval compare A B`; `agentkit eval report RESULTS`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigurationError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate an agent on a task set (or: eval compare A B, eval report RESULTS)",
        description="Run an agent K times on every task of a JSONL task set and report pass@1, pass@k, pass^k, "
        "turns, tokens, cost and time. Results are appended as they finish; re-running resumes.",
    )
    p.add_argument("positional", nargs="*", metavar="compare A B | report RESULTS", help=argparse.SUPPRESS)
    p.add_argument("--tasks", help="task set (JSONL, from `agentkit envs generate`)")
    from agentkit.backends.options import add_backend_arguments

    add_backend_arguments(p)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--k", type=int, default=1, help="attempts per task (pass@k, pass^k)")
    p.add_argument("--out", help="results JSONL (default: <tasks>.results.jsonl); re-running resumes it")
    p.add_argument("--max-turns", type=int, default=20)
    p.add_argument("--max-cost", type=float, default=None, help="stop scheduling attempts once the run costs this (USD)")
    p.add_argument("--max-tasks", type=int, default=None, help="only the first N tasks")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_eval)


def _outputs(out: Path) -> tuple[Path, Path]:
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    return Path(f"{stem}.summary.json"), Path(f"{stem}.report.html")


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    pos = args.positional
    if pos and pos[0] == "compare":
        return _compare(console, pos[1:], args.k)
    if pos and pos[0] == "report":
        return _report(console, pos[1:], args.k)
    if pos:
        raise ConfigurationError(f"unknown eval action {pos[0]!r}: use `eval --tasks FILE`, `eval compare A B` or `eval report RESULTS`")
    if not args.tasks:
        raise ConfigurationError("--tasks is required: generate a task set with `agentkit envs generate --out tasks.jsonl`")
    return _run(console, args)


def _run(console: Any, args: argparse.Namespace) -> int:

    from agentkit.backends.options import backend_from_args
    from agentkit.envs.eval import (
        EvalError,
        default_agent_factory,
        load_results,
        load_tasks,
    )
    from agentkit.envs.report import print_summary, write_html

    bad: list[str] = []
    tasks = load_tasks(args.tasks, on_error=lambda e: bad.append(str(e)))
    for line in bad[:10]:
        console.print(f"[yellow]skipped {line}[/]")
    if not tasks:
        raise EvalError(f"{args.tasks} holds no readable task")
    out = Path(args.out) if args.out else Path(args.tasks).with_suffix(".results.jsonl")
    backend = backend_from_args(args)
    config = {"provider": args.provider, "model": getattr(backend, "model", None), "thinking": args.thinking,
              "max_turns": args.max_turns, "tasks": str(Path(args.tasks).name)}  # fmt: skip
    factory = default_agent_factory(backend, thinking=args.thinking, max_turns=args.max_turns)
    n_tasks = min(len(tasks), args.max_tasks or len(tasks))

    summary, interrupted = evaluate_live(console, factory, tasks[:n_tasks], k=args.k, concurrency=args.concurrency,
                                         out=out, config=config, max_cost=args.max_cost, closing=backend)  # fmt: skip
    if interrupted:
        console.print(f"[yellow]interrupted: {summary.attempts} finished attempts are saved in {out}; run the same command to resume[/]")
    print_summary(summary, console)
    summary_path, html_path = _outputs(out)
    summary_path.write_text(json.dumps({"config": config, **summary.to_dict()}, indent=1))
    console.print(f"results: {out}\nsummary: {summary_path}")
    if not args.no_report:
        write_html(html_path, summary, load_results(out), config=config)
        console.print(f"report:  {html_path}")
    return 130 if interrupted else 0


@contextlib.contextmanager
def eval_progress(console: Any, total: int) -> Iterator[Callable[[Any, Any], None]]:
    """A live progress bar with the running pass rate, tokens, cost and errors; yields `evaluate`'s `on_attempt`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as bar:  # fmt: skip
        job = bar.add_task("", total=total)

        def on_attempt(rec: Any, p: Any) -> None:
            rate = p.passed / p.done if p.done else 0.0
            bar.update(job, completed=p.done, description=f"pass {100 * rate:.1f}% · {p.tokens:,} tok · ${p.cost:.4f} · {p.errors} errors")

        yield on_attempt


def evaluate_live(
    console: Any, factory: Any, tasks: list[Any], *, k: int, concurrency: int, out: Path, config: dict[str, Any],
    max_cost: float | None = None, closing: Any = None,
) -> tuple[Any, bool]:
    """`evaluate` with a live progress bar; Ctrl-C returns the summary of what finished.
    Returns (summary, interrupted). `closing`: a backend to close at the end."""
    from agentkit.envs.eval import evaluate, load_results, summarize

    with eval_progress(console, len(tasks) * k) as on_attempt:

        async def main() -> Any:
            try:
                return await evaluate(factory, tasks, k=k, concurrency=concurrency, out=out, config=config,
                                      max_cost=max_cost, on_attempt=on_attempt)  # fmt: skip
            finally:
                close = getattr(closing, "aclose", None)
                if close is not None:
                    await close()

        try:
            return asyncio.run(main()), False
        except KeyboardInterrupt:
            keep = {t.task.task_id for t in tasks}
            return summarize([r for r in load_results(out) if r.task_id in keep], k=k), True


def _compare(console: Any, files: list[str], k: int) -> int:
    from agentkit.envs.eval import compare, load_results
    from agentkit.envs.report import print_comparison

    if len(files) != 2:
        raise ConfigurationError("usage: agentkit eval compare A.jsonl B.jsonl")
    for f in files:
        if not Path(f).exists():
            raise ConfigurationError(f"{f} does not exist")
    cmp = compare(load_results(files[0]), load_results(files[1]), k=k)
    print_comparison(cmp, (Path(files[0]).name, Path(files[1]).name), console)
    return 0


def _report(console: Any, files: list[str], k: int) -> int:
    from agentkit.envs.eval import load_results, summarize
    from agentkit.envs.report import print_summary, write_html

    if len(files) != 1 or not Path(files[0]).exists():
        raise ConfigurationError("usage: agentkit eval report RESULTS.jsonl (an existing results file)")
    records = load_results(files[0])
    summary = summarize(records, k=k)
    print_summary(summary, console)
    html_path = write_html(_outputs(Path(files[0]))[1], summary, records)
    console.print(f"report: {html_path}")
    return 0
