"""Quality of the shipped local DSA agent model on held-out tasks, measured with the eval harness.

Held-out tasks come from the generator with a seed the training never used (the manifest names the training seed;
this script refuses an equal one and counts any task whose content also occurs in the training set). Three sets:
difficulty 1-2 in the generator's wording (the phrasings training drew from), the same tasks again in held-out
wording (phrasings training never saw, `agentkit.envs.wording`: same tools, state and verifier), and difficulty 3.
Every task runs through the real agent loop against the real environment (the Python sandbox for the dataset
family, the search index for knowledge) with DSA sparse attention (the default); a subset runs again with dense
attention on the same weights, the baseline the sparse figure is compared with. The top-k recall of the dense
attention mass is measured on the held-out tasks' reference trajectories.

    python benchmarks/bench_agent_quality.py                  # 45 + 45 reworded + 10 tasks per family (1,000)
    python benchmarks/bench_agent_quality.py --quick          # 1 + 1 reworded task per family, no difficulty 3
    python benchmarks/bench_agent_quality.py --write-manifest # store the figures in the checkpoint's manifest

The last line is one JSON object: pass1_d12, pass1_d3, pass1_d12_heldout_wording, sparse_dense_gap_points,
topk_recall, train_minutes, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentkit.backends.local.backend import SHIPPED_CHECKPOINT, manifest_lineage
from agentkit.backends.local.shipped import shipped_backend
from agentkit.envs.eval import AttemptRecord, EvalSummary, evaluate, summarize
from agentkit.envs.generator import generate, generate_records
from agentkit.envs.results import load_results, write_results
from agentkit.envs.spec import TaskRecord
from agentkit.training.agent import AGENT_SETTINGS, agent_factory
from agentkit.training.data import encode_records
from agentkit.training.diagnose import diagnose_turns
from agentkit.training.metrics import greedy_predictor, layer_topk_recalls, mean_recalls

EVAL_SEED = 7_770_101
"""Generator seed of the held-out sets (the training seed is in the manifest; they must differ). Seeds up to
7,770,051 measured the models of earlier rounds (docs/quality_history.md)."""
HELDOUT_SUFFIX = "~heldout-wording"


def held_out(per_family: int, difficulties: tuple[int, ...], seed: int, wording: str = "train") -> list[TaskRecord]:
    from agentkit.envs.families import families

    n = per_family * len(families())
    tasks = generate_records(n, seed, None, difficulties, workers=1, wording=wording)
    if wording == "heldout":  # the same tasks as the generated wording's: ids apart, so one run can hold both
        for t in tasks:
            t.task.task_id += HELDOUT_SUFFIX
    return tasks


def first_per_family(tasks: list[TaskRecord], n: int) -> list[TaskRecord]:
    """The first n tasks of each family (the generator deals families in turn), for the runs on a subset."""
    families = len({t.task.family for t in tasks})
    return tasks[: n * families]


def training_data_sections(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The training data of a checkpoint and of every checkpoint it was continued from (`continued_from`), each with
    the families its recipe asked the generator for (`generator_families`; empty: every family)."""
    return [{**node["training_data"], "generator_families": (node.get("recipe") or {}).get("families") or [],
             "wording": (node.get("recipe") or {}).get("wording", "template")}  # recipes before wording: templates
            for node in manifest_lineage(manifest) if node.get("training_data")]  # fmt: skip


def overlap_with_training(tasks: list[TaskRecord], manifest: dict[str, Any]) -> int | None:
    """How many held-out tasks have the same instruction and environment as a training task (regenerated from the
    seeds of the manifest and of the checkpoints it was continued from; None when it has no training data section)."""
    sections = training_data_sections(manifest)
    if not sections:
        return None
    train = {
        (r.task.instruction, r.meta.get("env_hash"))
        for data in sections
        for s in generate(data["n_tasks"], data["generator_seed"], data["generator_families"] or None,
                          tuple(data["difficulties"]), workers=2, wording=data["wording"])
        if s.line and (r := TaskRecord.from_json(s.line))
    }  # fmt: skip
    return sum((t.task.instruction, t.meta.get("env_hash")) in train for t in tasks)


async def run_eval(
    checkpoint: Path, tasks: list[TaskRecord], mode: str, concurrency: int, label: str, threads: int,
    constrain: bool = True, beams: int | None = None, out: Path | None = None,
) -> tuple[EvalSummary, list[AttemptRecord]]:  # fmt: skip
    """One eval run; with `out`, its attempts are appended to that results file as they finish and a rerun resumes
    it (a run of 1,000 tasks takes over an hour on two cores: an interruption loses at most the attempts in
    flight). The file's config names the checkpoint and settings, so resuming another checkpoint is refused."""
    backend = shipped_backend(
        checkpoint, mode=mode, max_batch=concurrency, threads=threads, constrain_tool_calls=constrain, beams=beams
    )
    tty = sys.stderr.isatty()
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:  # fmt: skip
        job = bar.add_task(label, total=len(tasks), rate="")

        records: list[AttemptRecord] = []

        def on_attempt(rec: AttemptRecord, progress: Any) -> None:
            records.append(rec)
            bar.update(job, completed=progress.done, rate=f"pass {progress.passed}/{progress.done}")
            if not tty and progress.done % 50 == 0:  # a log file gets a line now and then instead of a bar
                print(f"{label}: {progress.done}/{len(tasks)} done, {progress.passed} passed", file=sys.stderr,
                      flush=True)  # fmt: skip

        config = {"checkpoint": str(checkpoint.resolve()), "mode": mode, "beams": beams, "constrain": constrain}
        try:
            summary = await evaluate(agent_factory(backend), tasks, concurrency=concurrency, on_attempt=on_attempt,
                                     out=out, config=config)  # fmt: skip
            if out is not None:
                wanted = {t.task.task_id for t in tasks}
                records = [r for r in load_results(out) if r.task_id in wanted]
            return summary, records
        finally:
            await backend.aclose()


def write_records(path: Path, records: list[AttemptRecord]) -> None:
    """The attempts as an eval results file (`agentkit.envs.eval.load_results` reads it back), replacing any old one."""
    write_results(path, {"source": "bench_agent_quality", "attempts": len(records)}, sorted(records, key=lambda r: r.key))


def table(sparse: EvalSummary, dense: EvalSummary | None, title: str) -> Table:
    t = Table(title=title)
    t.add_column("group")
    t.add_column("tasks", justify="right")
    t.add_column("pass@1 sparse (DSA)", justify="right")
    if dense is not None:
        t.add_column("pass@1 dense (baseline)", justify="right")
        t.add_column("sparse / dense", justify="right")

    def row(name: str, g: Any, d: Any) -> None:
        cells = [name, str(g.tasks), f"{g.pass1:.1%}"]
        if dense is not None:
            cells += [f"{d.pass1:.1%}" if d else "-", f"{g.pass1 / d.pass1:.3f}x" if d and d.pass1 else "-"]
        t.add_row(*cells)

    for name, g in sparse.by_difficulty.items():
        row(f"difficulty {name}", g, dense.by_difficulty.get(name) if dense else None)
    for name, g in sparse.by_family.items():
        row(name, g, dense.by_family.get(name) if dense else None)
    row("all", sparse.overall, dense.overall if dense else None)
    return t


def wording_table(generated: EvalSummary, reworded: EvalSummary) -> Table:
    """The same tasks in the generator's wording and in held-out wording, by family: what wording alone costs."""
    t = Table(title="difficulty 1-2: generated wording vs held-out wording (the same tasks)")
    for col in ("family", "tasks", "generated", "held-out wording", "held-out / generated"):
        t.add_column(col, justify="left" if col == "family" else "right")
    rows = [*generated.by_family.items(), ("all", generated.overall)]
    for name, g in rows:
        h = reworded.overall if name == "all" else reworded.by_family.get(name)
        ratio = f"{h.pass1 / g.pass1:.3f}x" if h and g.pass1 else "-"
        t.add_row(name, str(g.tasks), f"{g.pass1:.1%}", f"{h.pass1:.1%}" if h else "-", ratio)
    return t


def miss_table(ref: dict[str, Any]) -> Table:
    """Where the reference turns' first misses are (diagnose.py), as shares of all turns."""
    t = Table(title=f"first missed token of {ref['reference_turns']} reference turns (teacher-forced, sparse)")
    t.add_column("where")
    t.add_column("share of turns", justify="right")
    t.add_row("[bold]none (turn exact)", f"{ref['turn_exact']:.1%}")
    for kind, share in ref["turn_first_miss"].items():
        t.add_row(kind, f"{share:.1%}")
    t.add_row("call or answer exact, given the reference thinking", f"{ref['action_exact']:.1%}")
    return t


def recall_layer_line(ref: dict[str, Any]) -> str:
    """Top-k recall per layer, indexer / best k: where the dense mass that top-k drops is (docs/dsa.md)."""
    return "top-k recall by layer (indexer / best k tokens): " + ", ".join(
        f"{i}: {x['indexer']:.3f} / {x['oracle']:.3f}" for i, x in enumerate(ref["topk_recall_by_layer"]))


async def reference_figures(checkpoint: Path, tasks: list[Any], quick: bool, *, exact: bool = True) -> dict[str, Any]:
    """Figures measured on held-out reference trajectories (the first 100 tasks, 10 with --quick): the indexer's
    and the oracle's top-k recall and, with `exact`, the teacher-forced turn-exact rate."""
    backend = shipped_backend(checkpoint)
    references = encode_records(backend.tokenizer, tasks[: 10 if quick else 100])
    layers = layer_topk_recalls(backend.transformer, references)
    recall, oracle = mean_recalls(layers)
    out = {"topk_recall": recall, "topk_recall_oracle": oracle, "recall_trajectories": len(references),
           "index_topk": backend.transformer.cfg.index_topk,
           "topk_recall_by_layer": [{"indexer": round(r, 4), "oracle": round(o, 4)} for r, o in layers]}  # fmt: skip
    if exact:
        diagnosis = diagnose_turns(greedy_predictor(backend.transformer), references, backend.tokenizer)
        out["turn_exact"] = diagnosis.exact / diagnosis.turns
        out["action_exact"] = diagnosis.action_exact / diagnosis.turns
        out["turn_first_miss"] = {k: round(v, 4) for k, v in diagnosis.shares().items()}
        out["reference_turns"] = diagnosis.turns
    await backend.aclose()
    return out


async def recall_only(args: argparse.Namespace, tasks: list[Any], manifest: dict[str, Any], console: Console) -> dict[str, Any]:
    """`--recall-only`: the figures measured on reference trajectories alone (the indexer's and the oracle's top-k
    recall, turn-exact and where turns miss), stored beside the manifest's other figures."""
    ref = await reference_figures(args.checkpoint, tasks, args.quick)
    recall, oracle = ref["topk_recall"], ref["topk_recall_oracle"]
    console.print(f"top-k recall of the dense attention mass (k = {ref['index_topk']}) on {ref['recall_trajectories']} "
                  f"held-out trajectories: indexer {recall:.4f}, the best k tokens {oracle:.4f} ({recall / oracle:.3f}x of it)")
    console.print(recall_layer_line(ref))
    console.print(miss_table(ref))
    figures = {"topk_recall": round(recall, 4), "topk_recall_oracle": round(oracle, 4),
               "topk_recall_by_layer": ref["topk_recall_by_layer"], "recall_trajectories": ref["recall_trajectories"],
               "turn_exact": round(ref["turn_exact"], 4),
               "action_exact": round(ref["action_exact"], 4), "turn_first_miss": ref["turn_first_miss"]}
    if args.write_manifest:
        if not manifest.get("eval") or manifest["eval"].get("quick") != args.quick:
            sys.exit("--recall-only --write-manifest updates a full run's figures: run without --recall-only first")
        update_manifest(args.checkpoint, {**manifest["eval"], **figures})
        console.print(f"reference-trajectory figures written to {args.checkpoint / 'manifest.json'}")
    return figures


def update_manifest(checkpoint: Path, figures: dict[str, Any], beams: int | None = None) -> None:
    """Store the figures; with `beams`, also the beam width they were measured with as the checkpoint's agent
    setting, which `LocalDSABackend` then decodes with by default (the model runs as it was measured)."""
    path = checkpoint / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest["eval"] = figures
    if beams is not None:
        manifest["agent"] = {**manifest.get("agent", {}), "beams": beams}
    path.write_text(json.dumps(manifest, indent=1) + "\n")


async def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    ap.add_argument("--quick", action="store_true", help="1 task per family at difficulty 1-2, reworded too")
    ap.add_argument("--per-family", type=int, default=None,
                    help="difficulty 1-2 tasks per family, each run in generated and in held-out wording (default 45)")
    ap.add_argument("--d3-per-family", type=int, default=None, help="difficulty 3 tasks per family (default 10)")
    ap.add_argument("--dense-per-family", type=int, default=None,
                    help="difficulty 1-2 tasks per family also run with dense attention (default 10, --quick 1)")
    ap.add_argument("--unconstrained-per-family", type=int, default=0,
                    help="tasks per family also run without constrained tool names (default 0)")
    ap.add_argument("--seed", type=int, default=EVAL_SEED)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beams", type=int, default=None,
                    help="beam width of each turn (1: greedy; default: the checkpoint manifest's agent setting)")
    ap.add_argument("--write-manifest", action="store_true", help="store the figures in the checkpoint's manifest")
    ap.add_argument("--resume-dir", type=Path, default=None,
                    help="keep every eval run's attempts in this directory as they finish (sparse.jsonl, dense.jsonl, "
                         "unconstrained.jsonl); the same command run again resumes where it stopped")
    ap.add_argument("--records", type=Path, default=None,
                    help="also write every sparse attempt (transcript included) to this JSONL file, the eval "
                         "harness's results format, for diffing two checkpoints task by task")  # fmt: skip
    ap.add_argument("--recall-only", action="store_true",
                    help="only the figures of the reference trajectories (top-k recalls of the indexer and the "
                         "oracle, turn-exact and where turns miss); with --write-manifest they replace those figures "
                         "and keep the others (minutes, not half an hour)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("agentkit.local").setLevel(logging.ERROR)  # malformed output is scored, not logged
    console = Console()
    per_family = args.per_family if args.per_family is not None else (1 if args.quick else 45)
    per_family_d3 = args.d3_per_family if args.d3_per_family is not None else (0 if args.quick else 10)
    manifest_path = args.checkpoint / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if args.seed in {data.get("generator_seed") for data in training_data_sections(manifest)}:
        sys.exit(f"--seed {args.seed} is a training data seed of this checkpoint: pick another one for held-out tasks")

    t0 = time.perf_counter()
    d12 = held_out(per_family, (1, 2), args.seed)
    if args.recall_only:
        return await recall_only(args, d12, manifest, console)
    reworded = held_out(per_family, (1, 2), args.seed, "heldout")
    same = [(a.task.task_id + HELDOUT_SUFFIX, a.verifier.to_dict()) for a in d12]
    assert same == [(b.task.task_id, b.verifier.to_dict()) for b in reworded], "held-out wording changed the tasks"
    d3 = held_out(per_family_d3, (3,), args.seed) if per_family_d3 else []
    tasks = d12 + reworded + d3
    overlap = overlap_with_training(d12 + d3, manifest) if not args.quick else None
    n_dense = (1 if args.quick else 10) if args.dense_per_family is None else args.dense_per_family
    dense_tasks = first_per_family(d12, n_dense)

    beams = args.beams if args.beams is not None else int(manifest.get("agent", {}).get("beams", 1))
    kept = (lambda name: args.resume_dir / f"{name}.jsonl") if args.resume_dir else (lambda name: None)
    everything, records = await run_eval(args.checkpoint, tasks, "sparse", args.concurrency, "sparse (DSA)",
                                         args.threads, beams=beams, out=kept("sparse"))  # fmt: skip
    by_set = {name: summarize([r for r in records if r.task_id in {t.task.task_id for t in group}])
              for name, group in (("d12", d12), ("reworded", reworded), ("d3", d3)) if group}  # fmt: skip
    sparse = by_set["d12"]
    if args.records:
        write_records(args.records, records)
    dense = (
        (await run_eval(args.checkpoint, dense_tasks, "dense", args.concurrency, "dense", args.threads,
                        beams=beams, out=kept("dense")))[0]
        if dense_tasks else None
    )  # fmt: skip
    ids = {t.task.task_id for t in dense_tasks}
    sparse_same = summarize([r for r in records if r.task_id in ids])  # the gap compares the same tasks
    n_free = (1 if args.quick else 10) if args.unconstrained_per_family is None else args.unconstrained_per_family
    free_tasks = first_per_family(tasks, n_free)
    free = (
        (await run_eval(args.checkpoint, free_tasks, "sparse", args.concurrency, "unconstrained", args.threads,
                        constrain=False, beams=beams, out=kept("unconstrained")))[0]
        if free_tasks else None
    )  # fmt: skip
    free_ids = {t.task.task_id for t in free_tasks}
    constrained_same = summarize([r for r in records if r.task_id in free_ids])

    ref = await reference_figures(args.checkpoint, d12, args.quick)
    recall, oracle_recall, exact = ref["topk_recall"], ref["topk_recall_oracle"], ref["turn_exact"]

    figures: dict[str, Any] = {
        "pass1_d12": round(sparse.pass1, 4),
        "pass1_d3": round(by_set["d3"].pass1, 4) if d3 else None,
        "pass1_d12_heldout_wording": round(by_set["reworded"].pass1, 4),
        "pass1_all": round(everything.pass1, 4),
        "pass1_dense_all": round(dense.pass1, 4) if dense else None,
        "sparse_dense_gap_points": round(100 * (dense.pass1 - sparse_same.pass1), 2) if dense else None,
        "pass1_unconstrained": round(free.pass1, 4) if free else None,
        "pass1_constrained_same_tasks": round(constrained_same.pass1, 4) if free else None,
        "unconstrained_tasks": len(free_tasks),
        "topk_recall": round(recall, 4),
        "topk_recall_oracle": round(oracle_recall, 4),
        "topk_recall_by_layer": ref["topk_recall_by_layer"],
        "turn_exact": round(exact, 4),
        "action_exact": round(ref["action_exact"], 4),
        "turn_first_miss": ref["turn_first_miss"],
        "train_minutes": manifest.get("training", {}).get("train_minutes"),
        "recipe_minutes_at_median": manifest.get("training", {}).get("recipe_minutes_at_median"),
        "by_difficulty": {d: round(g.pass1, 4) for d, g in sparse.by_difficulty.items()},
        "by_family": {f: round(g.pass1, 4) for f, g in sparse.by_family.items()},
        "dense_by_difficulty": {d: round(g.pass1, 4) for d, g in dense.by_difficulty.items()} if dense else None,
        "dense_by_family": {f: round(g.pass1, 4) for f, g in dense.by_family.items()} if dense else None,
        "heldout_wording_by_family": {f: round(g.pass1, 4) for f, g in by_set["reworded"].by_family.items()},
        "d3_by_family": {f: round(g.pass1, 4) for f, g in by_set["d3"].by_family.items()} if d3 else None,
        "tasks": len(tasks),
        "tasks_d12": len(d12),
        "tasks_d12_heldout_wording": len(reworded),
        # a rewording that would lose a name or number keeps the template's sentence: how many actually changed
        "tasks_reworded": sum(t.meta.get("wording") == "heldout" for t in reworded),
        "tasks_d3": len(d3),
        "dense_tasks": len(dense_tasks),
        "eval_seed": args.seed,
        "overlap_with_training": overlap,
        "index_topk": ref["index_topk"],
        "mean_turns": round(sparse.stats["turns"]["mean"], 2),
        "agent": {**{k: v for k, v in AGENT_SETTINGS.items() if k != "system_prompt"}, "beams": beams},
        "wall_s": round(time.perf_counter() - t0, 1),
        "quick": args.quick,
    }
    console.print(table(sparse, dense, f"held-out pass@1, difficulty 1-2, seed {args.seed}, {len(d12)} tasks, beams "
                        f"{beams}"))
    console.print(wording_table(sparse, by_set["reworded"]))
    if d3:
        console.print(table(by_set["d3"], None, f"difficulty 3, seed {args.seed}, {len(d3)} tasks"))
    console.print(miss_table(ref))
    console.print(recall_layer_line(ref))
    console.print(
        f"top-k recall of the dense attention mass (k = {figures['index_topk']}): {recall:.4f} (the best k tokens "
        f"keep {oracle_recall:.4f}); "
        f"reference turns reproduced exactly (teacher-forced, sparse): {exact:.1%}; "
        f"sparse - dense gap: {figures['sparse_dense_gap_points']} points; "
        f"without constrained tool names: {figures['pass1_unconstrained']} vs {figures['pass1_constrained_same_tasks']}"
        f" on the same {len(free_tasks)} tasks; "
        f"training took {figures['train_minutes']} min"
    )
    if args.write_manifest:
        update_manifest(args.checkpoint, figures, beams=beams)
        console.print(f"figures written to {manifest_path}")
    return figures


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
