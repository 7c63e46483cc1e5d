"""What a run records and what it costs: `manifest.json` beside the weights (recipe, data seeds and size, measured
time, agent settings, lineage), the recipe's cost from its step times, the time left, and `time_recipe`, which
projects a recipe's cost on this machine without running it.

Why medians of step times rather than wall time alone: a run's wall time counts every slowdown the machine had
(other jobs, a resumed run's earlier code); a median moves only when most steps of a stage are slow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from agentkit.backends.local.backend import MANIFEST_FILE
from agentkit.backends.local.config import DSAConfig
from agentkit.backends.local.cpu import cpu_name
from agentkit.backends.local.model import DSATransformer

from .agent import AGENT_SETTINGS
from .data import Example, build_dataset, collate, make_batches
from .recipe import STAGES, Recipe
from .steps import initial_model, make_optimizer, train_step


@dataclass
class RunState:
    step: int = 0  # global optimiser steps done, over all stages
    elapsed: float = 0.0  # training seconds so far (resumed runs add up)
    history: list[dict[str, Any]] = field(default_factory=list)


def source_tree() -> dict[str, Any]:
    """The git commit of the tree this code runs from, and whether tracked files differ from it (None outside a
    git checkout, e.g. an installed wheel)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def write_manifest(
    ckpt: Path, recipe: Recipe, state: RunState, examples: Sequence[Example], config: DSAConfig, data_minutes: float,
    provenance: Sequence[dict[str, Any]] = (),
) -> Path:
    """manifest.json beside the weights: the recipe, the training data's seeds and size, the measured time. The
    quality figures are added by benchmarks/bench_agent_quality.py (`update_manifest`), never by hand."""
    path = ckpt / MANIFEST_FILE
    old = json.loads(path.read_text()) if path.exists() else {}
    manifest = {
        "model_id": "local-dsa",
        "recipe": recipe.to_dict(),
        "config": config.to_dict(),
        "parameters": sum(math.prod(t.shape) for t in DSATransformer(config).state_dict().values()),
        "training_data": {
            "generator_seed": recipe.data_seed, "n_tasks": recipe.n_tasks, "n_trajectories": len(examples),
            "difficulties": list(recipe.difficulties), "families": sorted({e.family for e in examples}),
            "tokens": sum(len(e.ids) for e in examples), "target_tokens": sum(sum(e.target) for e in examples),
        },
        "training": {
            "steps": state.step, "step_minutes": round(state.elapsed / 60, 2), "data_minutes": round(data_minutes, 2),
            "train_minutes": round(state.elapsed / 60 + data_minutes, 2), "torch_threads": torch.get_num_threads(),
            "cpu": cpu_name(),
            **recipe_cost(recipe, state.history, data_minutes),
            "final_losses": {s: _last(state.history, s) for s in STAGES},
        },
        "provenance": list(provenance),
        "continued_from": _lineage(recipe.init),
        "agent": AGENT_SETTINGS,
        "eval": old.get("eval"),
    }  # fmt: skip
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def _lineage(init: str | None) -> dict[str, Any] | None:
    """What a continued model was continued from: the parent checkpoint's recipe, data and training (its own
    lineage included), so a fine-tuned manifest still names every seed and minute behind its weights."""
    if not init:
        return None
    path = Path(init) / MANIFEST_FILE
    parent = json.loads(path.read_text()) if path.exists() else {}
    keep = ("recipe", "training_data", "training", "continued_from")
    return {"checkpoint": str(init), **{k: parent[k] for k in keep if parent.get(k) is not None}}


@dataclass
class RecipeTiming:
    """What `time_recipe` measured: the median seconds per step of each stage, the projected data minutes, and the
    whole recipe's projected minutes on this machine."""

    median_step_seconds: dict[str, float]
    data_minutes: float
    stage_minutes: dict[str, float]

    @property
    def minutes(self) -> float:
        return self.data_minutes + sum(self.stage_minutes.values())


def time_recipe(
    recipe: Recipe, sample_tasks: int = 600, steps: int = 12, *, bf16: bool | None = None,
    compile: bool | None = None, stages: Sequence[str] = STAGES,
) -> RecipeTiming:  # fmt: skip
    """Project what `recipe` costs on this machine without running it: real steps of every stage on real batches
    of a sample of its own data (an even spread over the length-sorted batches, so the steps see the length mix),
    timed after one untimed warm-up step, medians times the stages' steps; the data stage scaled linearly from the
    sample (an overestimate: the tokenizer's training does not grow with the task count). `bf16` and `compile`
    override the recipe's (the comparisons of benchmarks/bench_train_speed.py); the warm-up step of a compiled stage
    compiles it, so its steps are timed as a long run sees them. `stages` times only those (the others are missing
    from the result, and `minutes` is then not the recipe's)."""
    recipe = dataclasses.replace(
        recipe, bf16=recipe.bf16 if bf16 is None else bf16, compile=recipe.compile if compile is None else compile
    ).resolved()
    t0 = time.monotonic()
    tokenizer, examples = build_dataset(dataclasses.replace(recipe, n_tasks=sample_tasks), log=lambda _s: None)
    data_minutes = (time.monotonic() - t0) / 60 * recipe.n_tasks / sample_tasks
    model = initial_model(recipe, tokenizer)
    groups = make_batches(examples, recipe.batch_tokens, recipe.length_multiple)
    picked = [groups[i] for i in range(0, len(groups), max(1, len(groups) // steps))][: steps + 1]
    batches = [collate([examples[j] for j in g], tokenizer.eos_id, recipe.context_weight, recipe.length_multiple)
               for g in picked]  # fmt: skip
    median: dict[str, float] = {}
    timed = [(stage, n) for stage, n in recipe.stage_steps() if stage in stages]
    for stage, _n in timed:
        opt = make_optimizer(model, recipe, stage)
        times = []
        for i in range(steps + 1):
            start = time.perf_counter()
            train_step(model, opt, recipe, stage, 1.0, *batches[i % len(batches)])
            if i:
                times.append(time.perf_counter() - start)
        median[stage] = statistics.median(times)
    stage_minutes = {stage: n * median[stage] / 60 for stage, n in timed}
    return RecipeTiming(median, data_minutes, stage_minutes)


def recipe_cost(recipe: Recipe, history: Sequence[dict[str, Any]], data_minutes: float) -> dict[str, Any]:
    """What the recipe costs on this machine, robust to whatever else ran beside it: the median seconds per step of
    each stage (from the run's own step times) times the stage's steps, plus the data time.

    Why beside `train_minutes`: that one is the run's wall time, and it counts every slowdown the machine had (other
    jobs, a resumed run's earlier code). Medians ignore transient spikes but not a slow recipe: most steps of a stage
    would have to be disturbed to move them."""
    median = step_medians(history)
    minutes = data_minutes + sum(n * median.get(stage, 0.0) for stage, n in recipe.stage_steps()) / 60
    return {"median_step_seconds": {k: round(v, 3) for k, v in median.items()},
            "recipe_minutes_at_median": round(minutes, 2)}  # fmt: skip


def step_times(history: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds of each logged step, by stage (`minutes` in a run's log is the running training time)."""
    times: dict[str, list[float]] = {}
    prev = 0.0
    for entry in history:
        times.setdefault(entry["stage"], []).append(60 * (entry["minutes"] - prev))
        prev = entry["minutes"]
    return times


def step_medians(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per step of each stage in a run's log."""
    return {stage: statistics.median(t) for stage, t in step_times(history).items()}


STEP_COST = {"dense": 1.0, "indexer": 2.6, "sparse": 4.5}
"""A stage's step time relative to a dense step, for estimating stages a run has not reached yet (ratios from
benchmarks/bench_train_speed.py, similar across the CPUs it ran on): the indexer and sparse steps materialise
[batch, seq, seq] scores that the dense step's fused kernel never does."""


def minutes_left(recipe: Recipe, history: Sequence[dict[str, Any]]) -> float | None:
    """Estimated training minutes to the end of the recipe: the steps left in each stage times that stage's median
    step so far, or, for a stage not reached yet, the latest stage's median scaled by `STEP_COST`. None before the
    first step. What the progress bar and the log lines show as the time left."""
    if not history:
        return None
    times = step_times(history)
    median = {stage: statistics.median(t) for stage, t in times.items()}
    latest = history[-1]["stage"]
    per_dense = median[latest] / STEP_COST[latest]
    seconds = sum(max(n - len(times.get(stage, ())), 0) * median.get(stage, per_dense * STEP_COST[stage])
                  for stage, n in recipe.stage_steps())  # fmt: skip
    return seconds / 60


def _last(history: Sequence[dict[str, Any]], stage: str) -> dict[str, float | None] | None:
    rows = [h for h in history if h["stage"] == stage][-10:]
    if not rows:
        return None
    out: dict[str, float | None] = {}
    keys = ("lm", "index", "focus") if any("focus" in r for r in rows) else ("lm", "index")  # focus: only with it
    for k in keys:
        values = [r[k] for r in rows if k in r and not math.isnan(r[k])]  # the indexer stage has no LM loss
        out[k] = round(sum(values) / len(values), 4) if values else None
    return out
