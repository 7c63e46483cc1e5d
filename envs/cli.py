"""`agentkit envs generate | check | show | trajectories` (wired into agentkit's CLI through `register`).

Also runnable on its own: `python -m agentkit.envs.cli generate --n 100 --out tasks.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from agentkit.envs.cli_args import UsageError, int_at_least, one_line_errors, readable_file, writable_path
from agentkit.envs.errors import SpecError
from agentkit.envs.spec import LineError, TaskRecord, iter_jsonl
from agentkit.envs.wording import WORDINGS

DEFAULT_DIFFICULTY = [1, 2, 3, 4, 5]


def parse_difficulty(text: str) -> list[int]:
    """'1-5' -> [1..5]; '2,4' -> [2, 4]; '3' -> [3]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                if int(lo) > int(hi):
                    raise argparse.ArgumentTypeError(f"difficulty range {part!r} runs backwards")
                out += list(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"difficulty must look like 1-5, 2,4 or 3, got {text!r}") from None
    if not out or any(d < 1 or d > 5 for d in out):
        raise argparse.ArgumentTypeError(f"difficulty must be within 1-5, got {text!r}")
    return sorted(set(out))


def register(subparsers: Any) -> None:
    p = one_line_errors(subparsers.add_parser(
        "envs", help="generate, check and inspect synthetic tool-use environments",
        description="Exit codes: 0 done, 1 the file has bad lines or tasks (each reported), 2 bad usage, 130 interrupted.",
    ))  # fmt: skip
    sub = p.add_subparsers(dest="envs_command", required=True)

    g = sub.add_parser("generate", help="generate a checked task set (JSONL)")
    g.add_argument("--n", type=int_at_least(1), required=True, help="number of tasks to keep")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--families", default="", help="comma-separated family names (default: all)")
    g.add_argument("--difficulty", type=parse_difficulty, default=None, help="e.g. 1-5, 2,3 or 4 (default 1-5)")
    g.add_argument("--out", required=True, help="output JSONL path (an interrupted run resumes from OUT.partial)")
    g.add_argument("--workers", type=int_at_least(1), default=os.cpu_count() or 1, help="worker processes (default: all CPUs)")
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where slots are generated (ray: agentkit[ray]; the same file as a local run)")  # fmt: skip
    g.add_argument("--address", default=None, help="Ray cluster address (default: start or join a local one)")
    g.add_argument("--wording", choices=WORDINGS, default="train",
                   help="phrasing of the instructions: train (varied, the default), heldout (phrasings kept out of "
                        "training, to measure generalization; same tasks as train), template (each family's own)")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("check", help="re-verify every task of a JSONL file")
    c.add_argument("path")
    c.add_argument("--no-determinism", action="store_true", help="skip regenerating each task from its seed")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("show", help="print one task readably")
    s.add_argument("path")
    s.add_argument("--index", type=int_at_least(0), default=0, help="0-based index among the file's valid tasks")
    s.set_defaults(func=cmd_show)

    t = sub.add_parser("trajectories", help="render reference solutions as chat transcripts (training JSONL)")
    t.add_argument("path")
    t.add_argument("--out", required=True)
    t.add_argument("--style", choices=("plain", "local-model"), default="plain",
                   help="plain: the references as the task set holds them; local-model: the thinking and arguments "
                        "written the way the local model is trained on them (anchors restated, spaced expressions)")
    t.set_defaults(func=cmd_trajectories)

    fl = sub.add_parser("families", help="list the installed families")
    fl.set_defaults(func=cmd_families)
    for parser in (g, c, s, t, fl):
        one_line_errors(parser)
    from agentkit.envs.packages.cli import add_commands  # synthesize, package, export-harbor, difficulty

    add_commands(sub)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console, transient=False)


def _coverage(args: argparse.Namespace, fams: list[str], diffs: list[int]) -> None:
    """A set too small for what was asked for explicitly is an error, not a silent gap: slots go round the
    families first, then the difficulties (`generator.plan`), so --n below families x difficulties misses some."""
    need = len(fams) * len(diffs)
    if args.difficulty is not None and len(diffs) > 1 and args.n < need:
        reached = sorted({diffs[(i // len(fams)) % len(diffs)] for i in range(args.n)})
        missing = [d for d in diffs if d not in reached]
        raise UsageError(f"--n {args.n} over {len(fams)} families reaches difficulties {reached} only, not {missing}; "
                         f"use --n {need} or more, or fewer --families")  # fmt: skip
    if args.families and args.n < len(fams):
        raise UsageError(f"--n {args.n} is fewer than the {len(fams)} families asked for; use --n {len(fams)} or more")


def _resume_state(out: Path, tmp: Path, plan_args: dict[str, Any]) -> tuple[int, set[str], list[str]]:
    """(next slot, hashes kept so far, their lines) from an interrupted run of the same arguments; else a fresh
    start. The partial file is ours alone, so a torn last line is simply dropped."""
    from agentkit.envs.generator import dedup_hash

    sidecar = tmp.with_name(tmp.name + ".json")
    if not tmp.exists() or not sidecar.exists():
        return 0, set(), []
    try:
        if json.loads(sidecar.read_text()) != plan_args:
            return 0, set(), []
    except (OSError, ValueError):
        return 0, set(), []
    lines, seen, start = [], set(), 0
    for raw in tmp.read_text(encoding="utf-8").split("\n"):
        try:
            rec = TaskRecord.from_json(raw)
        except Exception:  # noqa: BLE001 - a torn line of a killed run
            continue
        lines.append(raw)
        seen.add(dedup_hash(rec))
        start = int(rec.task.task_id.rsplit("-", 1)[1]) + 1
    return start, seen, lines


def _mapper(args: argparse.Namespace, console: Console) -> Any:
    """None (slots in this process or its worker pool), or the Ray cluster's ordered map for `--executor ray`."""
    if args.address and args.executor != "ray":
        raise UsageError("--address is for --executor ray")
    if args.executor != "ray":
        return None
    import functools

    from agentkit.envs.executors.ray_jobs import cluster_cpus, connect, ordered_map
    from agentkit.envs.results import EvalError

    try:
        ray = connect(args.address)
    except EvalError as exc:
        raise UsageError(str(exc)) from None
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    console.print(f"generating on the Ray cluster: {cluster_cpus(ray)} CPU(s) on {nodes} node(s)")
    return functools.partial(ordered_map, address=args.address)


def cmd_generate(args: argparse.Namespace) -> int:
    from agentkit.envs.families import families
    from agentkit.envs.generator import DISCARD_REASONS, generate

    console = Console(stderr=True)
    available = families()
    fams = [f.strip() for f in args.families.split(",") if f.strip()] or list(available)
    unknown = [f for f in fams if f not in available]
    if unknown:
        console.print(f"[red]error:[/red] unknown families {unknown}; available: {', '.join(available)}")
        return 2
    diffs = args.difficulty or DEFAULT_DIFFICULTY
    _coverage(args, fams, diffs)
    mapper = _mapper(args, console)
    out = Path(args.out)
    writable_path(out, "--out")
    tmp = out.with_name(out.name + ".partial")
    plan_args = {"n": args.n, "seed": args.seed, "families": fams, "difficulty": diffs, "wording": args.wording}
    start, seen, resumed = _resume_state(out, tmp, plan_args)
    kept: Counter[tuple[str, int]] = Counter()
    for line in resumed:
        task = json.loads(line)["task"]
        kept[(task["family"], task["difficulty"])] += 1
    discards: Counter[str] = Counter()
    envs: set[str] = set()
    failed_slots = 0
    t0 = time.perf_counter()
    if resumed:
        console.print(f"resuming {tmp}: {len(resumed)} task(s) kept before the interruption, from slot {start}")
    tmp.with_name(tmp.name + ".json").write_text(json.dumps(plan_args))
    try:
        with tmp.open("w", encoding="utf-8") as fh, _progress(console) as bar:
            fh.writelines(line + "\n" for line in resumed)
            fh.flush()
            job = bar.add_task("generating", total=args.n, completed=start, rate="")
            slots = generate(args.n, args.seed, fams, diffs, args.workers, start=start, seen=seen, mapper=mapper,
                             wording=args.wording)  # fmt: skip
            for i, slot in enumerate(slots, 1):
                discards.update(slot.discards)
                if slot.line is None:
                    failed_slots += 1
                else:
                    fh.write(slot.line + "\n")
                    fh.flush()
                    kept[(slot.family, slot.difficulty)] += 1
                    envs.add(slot.env_hash or "")
                bar.update(job, advance=1, rate=f"{i / (time.perf_counter() - t0):,.0f} tasks/s")
    except SpecError as exc:
        console.print(f"[red]error:[/red] {exc}")
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".json").unlink(missing_ok=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: {sum(kept.values())} task(s) kept in {tmp}; run the same command to resume[/]")
        return 130
    tmp.replace(out)
    tmp.with_name(tmp.name + ".json").unlink(missing_ok=True)
    dt = time.perf_counter() - t0
    n_kept = sum(kept.values())
    table = Table(title=f"{n_kept} tasks -> {out} ({dt:.1f} s, {n_kept / dt:,.0f} tasks/s, {len(envs)} distinct envs)")
    table.add_column("family")
    for d in diffs:
        table.add_column(f"d{d}", justify="right")
    for fam in fams:
        table.add_row(fam, *[str(kept[(fam, d)]) for d in diffs])
    console.print(table)
    attempts = n_kept + sum(discards.values())
    reasons = ", ".join(f"{r}={discards[r]}" for r in DISCARD_REASONS if discards[r]) or "none"
    console.print(f"discarded {sum(discards.values())} of {attempts} candidates: {reasons}")
    if failed_slots:
        console.print(f"[yellow]{failed_slots} slot(s) found no valid task; the file has fewer than --n lines[/yellow]")
    return 0 if not failed_slots else 1


def _records(path: str, console: Console) -> tuple[list[tuple[int, TaskRecord]], list[LineError]]:
    readable_file(path, "task file")
    good, bad = [], []
    try:
        for no, item in iter_jsonl(path):
            if isinstance(item, LineError):
                bad.append(item)
            else:
                good.append((no, item))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return good, bad


def cmd_check(args: argparse.Namespace) -> int:
    from agentkit.envs.generator import check_task
    from agentkit.envs.packages.cli import check_package_record
    from agentkit.envs.packages.format import is_package_record

    console = Console(stderr=True)
    good, bad = _records(args.path, console)
    for err in bad:
        console.print(f"[red]{args.path}:{err}[/red] (skipped)")
    failures: Counter[str] = Counter()
    seen: dict[str, int] = {}
    with _progress(console) as bar:
        job = bar.add_task("checking", total=len(good), rate="")
        for no, rec in good:
            try:
                if is_package_record(rec):  # its checks are the package gates, in the sandbox
                    reason = check_package_record(rec)
                else:
                    reason = check_task(rec, determinism=not args.no_determinism)
            except SpecError as exc:
                reason = f"invalid ({exc})"
            digest = rec.content_hash()
            if reason is None and digest in seen:
                reason = f"duplicate of line {seen[digest]}"
            seen.setdefault(digest, no)
            if reason:
                failures[reason.split(" (")[0].split(" of line")[0]] += 1
                console.print(f"[red]{args.path}:line {no}: {rec.task.task_id}: {reason}[/red]")
            bar.update(job, advance=1)
    ok = len(good) - sum(failures.values())
    console.print(f"{ok}/{len(good)} tasks pass every check; {len(bad)} unreadable line(s)")
    return 0 if ok == len(good) and not bad else 1


def cmd_show(args: argparse.Namespace) -> int:
    console = Console()
    good, bad = _records(args.path, console)
    if not 0 <= args.index < len(good):
        console.print(f"[red]index {args.index} out of range: the file has {len(good)} valid task(s)[/red]")
        return 2
    no, rec = good[args.index]
    t, env = rec.task, rec.environment
    console.rule(f"{t.task_id}  (line {no}, family {t.family}, difficulty {t.difficulty}, seed {t.seed})")
    console.print(f"[bold]Instruction[/bold]\n{t.instruction}\n")
    tools = Table(title="Tools", show_lines=False)
    tools.add_column("name")
    tools.add_column("arguments")
    tools.add_column("writes")
    for spec in env.tools:
        props = spec.parameters.get("properties", {})
        req = set(spec.parameters.get("required", []))
        tools.add_row(spec.name, ", ".join(f"{k}{'' if k in req else '?'}" for k in props), "yes" if spec.writes else "")
    console.print(tools)
    sizes = ", ".join(f"{c}: {len(r)}" for c, r in env.state.items())
    extras = (f"; files: {', '.join(env.files)}" if env.files else "") + (
        f"; corpus: {len(env.corpus)} docs" if env.corpus else "")
    console.print(f"[bold]State[/bold] {sizes}{extras}\n")
    console.print("[bold]Reference solution[/bold]")
    for i, c in enumerate(rec.solution.calls, 1):
        console.print(f" {i}. {c.tool}({json.dumps(c.arguments, ensure_ascii=False)[:200]})  [dim]# {c.thought}[/dim]")
    console.print(f" answer: {rec.solution.answer!r}\n")
    console.print(f"[bold]Verifier[/bold] expected diff: {json.dumps(rec.verifier.expect, ensure_ascii=False)[:600]}")
    for p in rec.verifier.predicates:
        console.print(f"  predicate: {p.collection}/{p.id}.{p.field} {p.op} {p.value!r}")
    if rec.verifier.answer:
        console.print(f"  answer check: {rec.verifier.answer.to_dict()}")
    pkg = rec.meta.get("package")
    if isinstance(pkg, dict):  # an environment package's task: its code is the solution and the verifier
        console.print(f"[bold]Package[/bold] {pkg.get('name')} / task {pkg.get('task')}: {pkg.get('description', '')}")
        for title, code in (("solution.py", pkg.get("solution_py", "")), ("verify.py", rec.verifier.program or "")):
            console.print(f"[bold]{title}[/bold]")
            console.print(code, markup=False, highlight=False)
        pkg = {k: v for k, v in pkg.items() if k not in ("solution_py", "results")}
    console.print(f"[dim]meta: {json.dumps({**rec.meta, **({'package': pkg} if pkg else {})})}[/dim]")
    return 0


def cmd_trajectories(args: argparse.Namespace) -> int:
    from agentkit.envs.results import same_file
    from agentkit.envs.trajectories import LOCAL_MODEL, PLAIN, to_training_line

    console = Console(stderr=True)
    if same_file(args.path, args.out):
        raise UsageError(f"--out {args.out} is the input file; write the transcripts to a new file")
    out = writable_path(args.out, "--out")
    good, bad = _records(args.path, console)  # read (and fail) before --out is touched
    for err in bad:
        console.print(f"[red]{args.path}:{err}[/red] (skipped)")
    tmp = out.with_name(f".{out.name}.tmp")
    style = LOCAL_MODEL if args.style == "local-model" else PLAIN
    with open(tmp, "w", encoding="utf-8") as fh:
        for _, rec in good:
            fh.write(json.dumps(to_training_line(rec, style), ensure_ascii=False) + "\n")
    tmp.replace(out)  # --out changes only once the whole file is written
    console.print(f"wrote {len(good)} transcript(s) to {args.out}")
    return 0 if not bad else 1


def cmd_families(args: argparse.Namespace) -> int:
    from agentkit.envs.families import families

    for name, fam in families().items():
        print(f"{name:12} {len(fam.atoms)} templates  {fam.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentkit.envs.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["envs", *(argv if argv is not None else sys.argv[1:])])
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"agentkit envs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
