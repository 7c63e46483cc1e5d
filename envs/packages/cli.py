"""`agentkit envs synthesize | package | export-harbor | difficulty`: environment packages from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from agentkit.envs.cli_args import UsageError, int_at_least, one_line_errors


def add_commands(sub: Any) -> None:
    from agentkit.backends.options import add_backend_arguments

    s = one_line_errors(sub.add_parser(
        "synthesize", help="an agent builds verified environment packages from task categories",
        description="Per category, an agent builds data, tools, tasks, solutions and verifiers in a sandbox, repairs "
                    "them until the gates keep them and raises the difficulty. Re-running resumes (finished "
                    "categories are skipped). Exit codes: 0 done, 1 a category failed, 2 bad usage, 130 interrupted.",
    ))  # fmt: skip
    s.add_argument("--category", action="append", default=[], help="a task category, e.g. 'trip planning' (repeatable)")
    s.add_argument("--categories", help="a file with one category per line")
    s.add_argument("--starter", type=int_at_least(1), default=None, help="the first N of the built-in starter list")
    add_backend_arguments(s)
    s.add_argument("--n", type=int_at_least(1), default=3, help="tasks to keep per category (default 3)")
    s.add_argument("--out", required=True, help="output folder (packages/, records/, logs/, done/, tasks.jsonl)")
    s.add_argument("--concurrency", type=int_at_least(1), default=2, help="categories in flight")
    s.add_argument("--max-turns", type=int_at_least(1), default=60)
    s.add_argument("--executor", choices=("local", "ray"), default="local", help="where categories run (ray: agentkit[ray])")
    s.add_argument("--address", default=None, help="Ray cluster address (default: start or join a local one)")
    s.set_defaults(func=cmd_synthesize)

    c = one_line_errors(sub.add_parser("package", help="gate package folders and write their kept tasks as JSONL"))
    c.add_argument("folders", nargs="+")
    c.add_argument("--out", help="JSONL of the kept tasks")
    c.add_argument("--timeout", type=float, default=20.0, help="seconds per execution in the sandbox")
    c.set_defaults(func=cmd_package)

    h = one_line_errors(sub.add_parser("export-harbor", help="write package tasks as Harbor task folders"))
    h.add_argument("path", help="task set (JSONL)")
    h.add_argument("--out", required=True, help="folder to write one task folder per task into")
    h.set_defaults(func=cmd_export_harbor)

    d = one_line_errors(sub.add_parser(
        "difficulty", help="measure each task's pass rate with a solver; keep those in a band",
        description="k attempts per task through the eval harness; a task is kept when its pass rate lies in --band "
                    "(default '0,1': solved at least once, not always); the rate is recorded as its difficulty."))  # fmt: skip
    d.add_argument("path", help="task set (JSONL)")
    add_backend_arguments(d)
    d.add_argument("--k", type=int_at_least(1), default=8)
    d.add_argument("--band", default="0,1", help="pass-rate band: '0,1' exclusive, '[0.1,0.9]' inclusive")
    d.add_argument("--concurrency", type=int_at_least(1), default=4)
    d.add_argument("--out", required=True, help="JSONL of the kept tasks, with pass_rate and difficulty")
    d.set_defaults(func=cmd_difficulty)


def categories_of(args: argparse.Namespace) -> list[str]:
    from agentkit.envs.packages.categories import STARTER_CATEGORIES

    cats = list(args.category)
    if args.categories:
        try:
            text = Path(args.categories).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --categories {args.categories}: {exc.strerror}") from None
        cats += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if args.starter:
        cats += STARTER_CATEGORIES[: args.starter]
    if not cats:
        raise UsageError("give --category, --categories FILE or --starter N")
    return list(dict.fromkeys(cats))


def _ray_runner(args: argparse.Namespace, cfg: Any, console: Any) -> Any:
    """None (categories in this process), or `--executor ray`'s runner: one Ray task per category."""
    if args.address and args.executor != "ray":
        raise UsageError("--address is for --executor ray")
    if args.executor != "ray":
        return None
    from agentkit.envs.attempt import AgentSpec
    from agentkit.envs.executors.ray_jobs import synthesize_category_on_ray
    from agentkit.envs.results import EvalError

    spec = AgentSpec(args.provider, args.model, args.base_url).to_dict()
    try:
        runner = synthesize_category_on_ray(spec, args.out, cfg, address=args.address)
    except EvalError as exc:
        raise UsageError(str(exc)) from None
    console.print("synthesizing on the Ray cluster: one task per category")
    return runner


def cmd_synthesize(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agentkit.backends.options import backend_from_args
    from agentkit.envs.packages.synthesizer import SynthConfig, synthesize

    cats = categories_of(args)
    console = Console(stderr=True)
    cfg = SynthConfig(n_tasks=args.n, max_turns=args.max_turns, thinking=True if args.thinking is None else args.thinking)
    run_category = _ray_runner(args, cfg, console)

    async def main() -> list[Any]:
        backend = backend_from_args(args)
        with Progress(TextColumn("[bold]synthesize"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:  # fmt: skip
            task = bar.add_task("synthesize", total=len(cats))

            def progress(res: Any, resumed: bool) -> None:
                how = "resumed" if resumed else f"{res.seconds:.0f} s"
                why = ", ".join(f"{k} {v}" for k, v in sorted(res.dropped.items())) or "none"
                bar.console.print(f"{res.category}: {res.status}, kept {res.kept}, dropped: {why} ({how})"
                                  + (f" - {res.error}" if res.error else ""))  # fmt: skip
                bar.advance(task)

            try:
                return await synthesize(backend, cats, args.out, config=cfg, concurrency=args.concurrency,
                                        progress=progress, run_category=run_category)  # fmt: skip
            finally:
                close = getattr(backend, "aclose", None)
                if close is not None:
                    await close()

    results = asyncio.run(main())
    kept = sum(r.kept for r in results)
    cost = sum(r.cost for r in results)
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in results)
    per = f", ${cost / kept:.4f} per kept task" if kept else ""
    print(f"{kept} task(s) kept from {len(results)} categor{'y' if len(results) == 1 else 'ies'} -> "
          f"{Path(args.out) / 'tasks.jsonl'}; {tokens} tokens, ${cost:.4f}{per}")  # fmt: skip
    return 0 if all(r.status == "done" for r in results) else 1


def cmd_package(args: argparse.Namespace) -> int:
    from agentkit.envs.errors import SpecError
    from agentkit.envs.packages import GateConfig, Package, check_packages
    from agentkit.envs.spec import write_jsonl

    pkgs = []
    for folder in args.folders:
        try:
            pkgs.append(Package.load(folder))
        except SpecError as exc:
            print(f"{folder}: load: {exc}", file=sys.stderr)
            return 1
    reports = asyncio.run(check_packages(pkgs, config=GateConfig(exec_timeout=args.timeout)))
    kept = []
    for rep in reports:
        for o in rep.outcomes:
            print(f"{rep.package}/{o.task_id}: " + ("kept" if o.kept else f"discarded ({o.reason}): {o.detail}"))
        kept += rep.kept
    if args.out:
        write_jsonl(args.out, kept)
    print(f"{len(kept)} of {sum(len(r.outcomes) for r in reports)} task(s) kept" + (f" -> {args.out}" if args.out else ""))
    return 0 if all(o.kept for r in reports for o in r.outcomes) else 1


def cmd_export_harbor(args: argparse.Namespace) -> int:
    from agentkit.envs.errors import SpecError
    from agentkit.envs.packages.harbor import export_task
    from agentkit.envs.spec import LineError, iter_jsonl

    n = bad = 0
    for no, item in iter_jsonl(args.path):
        if isinstance(item, LineError):
            print(f"{args.path}: {item}", file=sys.stderr)
            bad += 1
            continue
        try:
            export_task(item, args.out)
            n += 1
        except SpecError as exc:
            print(f"line {no}: {exc}", file=sys.stderr)
            bad += 1
    print(f"{n} Harbor task folder(s) -> {args.out}")
    return 1 if bad else 0


def cmd_difficulty(args: argparse.Namespace) -> int:
    from agentkit.backends.options import backend_from_args
    from agentkit.envs.eval import default_agent_factory, load_tasks
    from agentkit.envs.packages.difficulty import Band, measure
    from agentkit.envs.spec import write_jsonl

    try:
        band = Band.parse(args.band)
    except ValueError as exc:
        raise UsageError(f"--band: {exc}") from None
    tasks = load_tasks(args.path)

    async def main() -> tuple[list[Any], dict[str, float]]:
        backend = backend_from_args(args)
        # the executor opens a sandbox pool of its own when a task needs one, as `agentkit eval` does
        return await measure(tasks, default_agent_factory(backend, thinking=args.thinking), k=args.k, band=band,
                             concurrency=args.concurrency,
                             solver=f"{args.provider}:{getattr(backend, 'model', '')}")  # fmt: skip

    kept, rates = asyncio.run(main())
    write_jsonl(args.out, kept)
    for t in tasks:
        rate = rates.get(t.task.task_id)
        print(f"{t.task.task_id}: " + ("no valid attempt" if rate is None else f"pass rate {rate:.2f}")
              + (" kept" if t in kept else ""))  # fmt: skip
    print(f"{len(kept)} of {len(tasks)} task(s) in the band {args.band} -> {args.out}")
    return 0


def check_package_record(record: Any, timeout: float = 20.0) -> str | None:
    """`agentkit envs check` for a package task: every gate again, in fresh sandboxes, over the package the record
    carries; None when it is kept and its reference still gives the recorded calls and answer, else the reason."""
    from agentkit.envs.packages import GateConfig, check_package
    from agentkit.envs.packages.format import package_of_record

    try:
        report = asyncio.run(check_package(package_of_record(record), config=GateConfig(exec_timeout=timeout)))
    except Exception as exc:  # noqa: BLE001 - no sandbox, or a record that is not a package: said, not raised
        return f"not checked ({type(exc).__name__}: {exc})"
    [outcome] = report.outcomes
    if not outcome.kept:
        return f"{outcome.reason} ({outcome.detail[:200]})"
    [again] = report.kept
    if [c.to_dict() for c in again.solution.calls] != [c.to_dict() for c in record.solution.calls] or \
            again.solution.answer != record.solution.answer:
        return "stale (the reference now makes other calls or gives another answer than the record says)"
    return None
