"""`agentkit eval`: run an agent over a task set; `eval compare A B`; `eval report R`; `eval repair R`;
`eval merge S1 S2 ... --out M`.

Exit codes (also in docs/eval.md):
  eval --tasks ...   0 every attempt has an outcome · 1 some attempts ended on infrastructure errors (re-run them
                     with --retry-errors), or the pre-flight request failed · 2 bad usage · 130 interrupted (resume
                     by running the same command)
  report, compare    0 · 1 a results file has unreadable lines (reported by number; see `eval repair`) · 2 bad usage
  merge              0 · 1 an input had unreadable lines (skipped) · 2 bad usage or inputs of different runs
  repair             0 (the original is kept as RESULTS.bak-<time>) · 2 bad usage
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agentkit.envs.cli_args import (
    UsageError,
    int_at_least,
    one_line_errors,
    positive_float,
    readable_file,
    writable_path,
)

ACTIONS = ("compare", "report", "repair", "merge")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate an agent on a task set (or: eval compare A B | report R | repair R | merge S... --out M)",
        description="Run an agent K times on every task of a JSONL task set and report pass@1, pass@k, pass^k, "
        "turns, tokens, cost and time. Results are appended as they finish; re-running resumes. "
        "Exit codes: 0 done, 1 attempts ended on infrastructure errors (--retry-errors re-runs them), "
        "2 bad usage, 130 interrupted.",
    )
    one_line_errors(p)
    p.add_argument("positional", nargs="*", metavar="compare A B | report R | repair R | merge S...", help=argparse.SUPPRESS)
    p.add_argument("--tasks", help="task set (JSONL, from `agentkit envs generate`)")
    from agentkit.backends.options import add_backend_arguments

    add_backend_arguments(p)
    p.add_argument("--concurrency", type=int_at_least(1), default=8, help="attempts in flight (per node with Ray)")
    p.add_argument("--k", type=int_at_least(1), default=None,
                   help="attempts per task (default 1; report/compare: the k recorded in the results)")  # fmt: skip
    p.add_argument("--out", help="results JSONL (default: <tasks>.results.jsonl); re-running resumes it")
    p.add_argument("--max-turns", type=int_at_least(1), default=None,
                   help="turns per attempt (default: the model's own, from the local model's manifest; else 20)")  # fmt: skip
    p.add_argument("--max-cost", type=positive_float, default=None, help="stop scheduling attempts once the run costs this (USD)")
    p.add_argument("--max-tasks", type=int_at_least(1), default=None, help="only the first N tasks")
    p.add_argument("--retry-errors", action="store_true", help="re-run the attempts that ended on infrastructure errors")
    p.add_argument("--no-preflight", action="store_true", help="skip the request that checks the model before the run")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only shard I of N (deterministic by task id)")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="where attempts run (ray: agentkit[ray])")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--progress-every", type=positive_float, default=10.0,
                   help="seconds between progress lines when the output is not a terminal")  # fmt: skip
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_eval)


def _outputs(out: Path) -> tuple[Path, Path]:
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    return Path(f"{stem}.summary.json"), Path(f"{stem}.report.html")


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    pos = args.positional
    if pos and pos[0] in ACTIONS:
        return {"compare": _compare, "report": _report, "repair": _repair, "merge": _merge}[pos[0]](console, pos[1:], args)
    if pos:
        raise UsageError(f"unknown eval action {pos[0]!r}: use `eval --tasks FILE`, or eval {' | '.join(ACTIONS)}")
    if not args.tasks:
        raise UsageError("--tasks is required: generate a task set with `agentkit envs generate --out tasks.jsonl`")
    return _run(console, args)


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def _run(console: Any, args: argparse.Namespace) -> int:
    from agentkit.envs.attempt import DEFAULT_MAX_TURNS, AgentSpec, agent_defaults
    from agentkit.envs.eval import EvalError, load_tasks
    from agentkit.envs.executors import LocalExecutor, parse_shard
    from agentkit.envs.report import print_summary, write_html
    from agentkit.envs.results import ResultsStore, same_file

    task_path = readable_file(args.tasks, "task file")
    out = Path(args.out) if args.out else task_path.with_suffix(".results.jsonl")
    if same_file(out, task_path):
        raise UsageError(f"--out {out} is the task file; results go to a file of their own")
    writable_path(out, "--out")
    summary_path, html_path = _outputs(out)
    writable_path(summary_path, "summary")
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.address and args.executor != "ray":
        raise UsageError("--address is for --executor ray")
    if not ResultsStore(out).looks_like_results():
        raise UsageError(f"--out {out} holds something other than results; choose another file")
    bad: list[str] = []
    tasks = load_tasks(task_path, on_error=lambda e: bad.append(str(e)))
    for line in bad[:10]:
        _warn(f"{task_path}: skipped {line}")
    if not tasks:
        raise EvalError(f"{task_path} holds no readable task")
    k = args.k or 1
    spec = AgentSpec(args.provider, args.model, args.base_url, args.thinking, args.max_turns)
    backend = spec.backend()
    spec.max_turns = args.max_turns or int(agent_defaults(backend).get("max_turns", DEFAULT_MAX_TURNS))
    config = {"provider": args.provider, "model": getattr(backend, "model", None), "thinking": args.thinking,
              "max_turns": spec.max_turns, "tasks": task_path.name}  # fmt: skip
    if args.executor == "ray":
        from agentkit.envs.executors.ray import RayExecutor

        executor: Any = RayExecutor(spec, address=args.address, concurrency=args.concurrency)
    else:
        executor = LocalExecutor(spec.factory(backend), concurrency=args.concurrency)

    summary, interrupted = evaluate_live(
        console, None, tasks, k=k, concurrency=args.concurrency, out=out, config=config, max_cost=args.max_cost,
        closing=backend, max_tasks=args.max_tasks, retry_errors=args.retry_errors, shard=shard, executor=executor,
        preflight_backend=None if args.no_preflight else _preflight_backend(spec, backend),
        progress_every=args.progress_every,
    )  # fmt: skip
    if interrupted:
        console.print(f"[yellow]interrupted: {summary.attempts} finished attempts are saved in {out}; run the same command to resume[/]")
    print_summary(summary, console)
    summary_path.write_text(json.dumps({"config": config, **summary.to_dict()}, indent=1))
    console.print(f"results: {out}\nsummary: {summary_path}")
    if not args.no_report:
        loaded = ResultsStore(out).read()
        write_html(html_path, summary, loaded.records, config=config)
        console.print(f"report:  {html_path}")
    if interrupted:
        return 130
    if summary.infra_errors:
        console.print(f"[red]{summary.infra_errors} attempt(s) ended on infrastructure errors and are not scored; "
                      "fix the cause and re-run with --retry-errors[/]")  # fmt: skip
        return 1
    return 0


def _preflight_backend(spec: Any, backend: Any) -> Any:
    """The pre-flight asks with little patience (a wrong URL fails in a second, not after every retry); the local
    model is asked directly (a second copy of it would load the weights again)."""
    if spec.provider == "local":
        return backend
    from dataclasses import replace

    return replace(spec, max_retries=1).backend()


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds + 0.5)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress_line(p: Any) -> str:
    """One line of progress: done/total, pass rate, errors, pace and ETA."""
    rate = p.passed / p.done if p.done else 0.0
    pct = 100 * p.done / p.total if p.total else 100.0
    errs = f" · {p.infra_errors} infra errors" if p.infra_errors else ""
    return (f"eval {p.done}/{p.total} ({pct:.0f}%) · pass {100 * rate:.1f}% · {p.tokens:,} tok · ${p.cost:.4f}"
            f"{errs} · {p.rate:.2f} attempts/s · ETA {_fmt_s(p.eta)}")  # fmt: skip


@contextlib.contextmanager
def eval_progress(console: Any, total: int, *, every: float = 10.0) -> Iterator[Callable[[Any, Any], None]]:
    """Progress for `evaluate`'s `on_attempt`: a live bar with an ETA on a terminal; elsewhere (a log, CI) a line on
    stderr every `every` seconds and one at the end."""
    if not console.is_terminal:
        last = {"t": time.monotonic()}

        def on_line(rec: Any, p: Any) -> None:
            if time.monotonic() - last["t"] >= every or p.done == p.total:
                last["t"] = time.monotonic()
                print(progress_line(p), file=sys.stderr, flush=True)

        yield on_line
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:  # fmt: skip
        job = bar.add_task("", total=total)

        def on_attempt(rec: Any, p: Any) -> None:
            rate = p.passed / p.done if p.done else 0.0
            errs = f" · {p.infra_errors} infra errors" if p.infra_errors else ""
            bar.update(job, completed=p.done, description=f"pass {100 * rate:.1f}% · {p.tokens:,} tok · ${p.cost:.4f}{errs}")

        yield on_attempt


def evaluate_live(
    console: Any, factory: Any, tasks: list[Any], *, k: int, concurrency: int, out: Path, config: dict[str, Any],
    max_cost: float | None = None, closing: Any = None, preflight_backend: Any = None, progress_every: float = 10.0,
    **kw: Any,
) -> tuple[Any, bool]:
    """`evaluate` with live progress; Ctrl-C returns the summary of what finished.
    Returns (summary, interrupted). `closing`: a backend to close at the end; `preflight_backend`: checked first."""
    from agentkit.envs.eval import evaluate, preflight, summarize
    from agentkit.envs.executors import shard_tasks
    from agentkit.envs.results import ResultsStore

    total = len(shard_tasks(tasks[: kw.get("max_tasks") or None], kw.get("shard"))) * k
    with eval_progress(console, total, every=progress_every) as on_attempt:

        async def main() -> Any:
            try:
                if preflight_backend is not None:
                    try:
                        await preflight(preflight_backend)
                    finally:
                        if preflight_backend is not closing and hasattr(preflight_backend, "aclose"):
                            await preflight_backend.aclose()
                return await evaluate(factory, tasks, k=k, concurrency=concurrency, out=out, config=config,
                                      max_cost=max_cost, on_attempt=on_attempt, on_warning=_warn, **kw)  # fmt: skip
            finally:
                close = getattr(closing, "aclose", None)
                if close is not None:
                    await close()

        try:
            return asyncio.run(main()), False
        except KeyboardInterrupt:
            keep = {t.task.task_id for t in tasks}
            records = [r for r in ResultsStore(out).read().records if r.task_id in keep and r.attempt < k]
            return summarize(records, k=k, config=config), True


def _load(path: str) -> Any:
    from agentkit.envs.results import ResultsStore

    readable_file(path, "results file")
    loaded = ResultsStore(path).read()
    for problem in loaded.problems:
        _warn(f"{path}: {problem} (skipped; `agentkit eval repair {path}` removes it, keeping a backup)")
    if loaded.header is None and not loaded.records and not loaded.problems:
        raise UsageError(f"{path} holds no results")
    return loaded


def _check_k(k: int | None, loaded: Any, path: str) -> int:
    if k is None:
        return int(loaded.k)
    if k > loaded.k:
        raise UsageError(f"--k {k} needs {k} attempts per task; {path} was run with k={loaded.k}")
    return k


def _compare(console: Any, files: list[str], args: argparse.Namespace) -> int:
    from agentkit.envs.metrics import compare
    from agentkit.envs.report import print_comparison

    if len(files) != 2:
        raise UsageError("usage: agentkit eval compare A.jsonl B.jsonl")
    a, b = _load(files[0]), _load(files[1])
    ka, kb = _check_k(args.k, a, files[0]), _check_k(args.k, b, files[1])
    cmp = compare(a.records, b.records, ka=ka, kb=kb, config_a=a.config, config_b=b.config)
    print_comparison(cmp, (Path(files[0]).name, Path(files[1]).name), console)
    return 1 if a.problems or b.problems else 0


def _report(console: Any, files: list[str], args: argparse.Namespace) -> int:
    from agentkit.envs.metrics import summarize
    from agentkit.envs.report import print_summary, write_html

    if len(files) != 1:
        raise UsageError("usage: agentkit eval report RESULTS.jsonl")
    loaded = _load(files[0])
    k = _check_k(args.k, loaded, files[0])
    summary = summarize(loaded.records, k=k, config=loaded.config)
    print_summary(summary, console)
    html_path = _outputs(Path(files[0]))[1]
    writable_path(html_path, "report")
    write_html(html_path, summary, loaded.records, config=loaded.config)
    console.print(f"report: {html_path}")
    return 1 if loaded.problems else 0


def _repair(console: Any, files: list[str], args: argparse.Namespace) -> int:
    from agentkit.envs.results import repair

    if len(files) != 1:
        raise UsageError("usage: agentkit eval repair RESULTS.jsonl")
    path = readable_file(files[0], "results file")
    writable_path(path, "results file")
    backup, loaded = repair(path)
    for problem in loaded.problems:
        console.print(f"removed {problem}")
    console.print(f"{path}: kept {len(loaded.records)} attempt(s), removed {len(loaded.problems)} unreadable line(s); "
                  f"the original is at {backup}")  # fmt: skip
    return 0


def _merge(console: Any, files: list[str], args: argparse.Namespace) -> int:
    from agentkit.envs.executors import merge_results

    if not files or not args.out:
        raise UsageError("usage: agentkit eval merge SHARD1.jsonl SHARD2.jsonl ... --out MERGED.jsonl")
    for f in files:
        readable_file(f, "results file")
    writable_path(args.out, "--out")
    n, notes = merge_results(files, args.out)
    for note in notes:
        _warn(note)
    console.print(f"merged {len(files)} file(s): {n} attempt(s) -> {args.out}")
    return 1 if notes else 0
