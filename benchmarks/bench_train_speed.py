"""What the training recipe costs on *this* machine, before committing an hour to it.

The recipe's budget is 90 minutes of training on a 2-core machine (it was 60 before the recipe grew to varied
wording and the sparse stage's focus loss; the figures in docs/training.md say which budget they were judged by),
but machines of that size differ a lot: whether the CPU multiplies bfloat16 natively, emulates it (many times
slower than float32), or spends the step on elementwise work whatever its matmul speed (docs/training.md has the figures of the machines measured so far). This benchmark
times real training steps of every stage (`agentkit.training.time_recipe`:
the recipe's shape, real batches from a sample of the recipe's own data) the way `agentkit local train` runs them on
this machine (`Recipe.bf16=None`: bfloat16 autocast where the CPU has it natively, float32 elsewhere;
`Recipe.compile=None`: through torch.compile where a C++ compiler is present) and projects the full recipe.
Baselines, measured in the same run on the same batches: every stage eager (what compiling saves), and a few dense
steps at the other precision (float32 where bfloat16 is native, else emulated bfloat16: what the choice avoids).

    python benchmarks/bench_train_speed.py           # 600 sample tasks, 12 timed steps per stage
    python benchmarks/bench_train_speed.py --quick   # 200 sample tasks, 5 timed steps per stage (a few minutes:
                                                     # each compiled stage compiles once, about a minute cold)

The last line is one JSON object: recipe_minutes_projected, within_budget, precision, compiled, median_step_seconds,
recipe_minutes_projected_eager, compile_speedup_dense, ...
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from agentkit.backends.local.backend import MANIFEST_FILE, SHIPPED_CHECKPOINT
from agentkit.backends.local.cpu import cpu_name, native_bf16
from agentkit.training.manifest import time_recipe
from agentkit.training.recipe import Recipe

BUDGET_MINUTES = 90.0


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 sample tasks, 5 timed steps per stage")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, as `agentkit local train` (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = Recipe().resolved()
    native = native_bf16()
    sample_tasks, steps = (200, 5) if args.quick else (600, 12)
    chosen = time_recipe(recipe, sample_tasks, steps)
    # baseline 1, every stage: the same precision without torch.compile (what compiling saves)
    eager = time_recipe(recipe, sample_tasks, steps, compile=False) if recipe.compile else chosen
    # baseline 2, a few dense steps: the other precision (what the precision choice saves). With native bfloat16 it
    # is float32 run the chosen way; without, emulated bfloat16 (eager: two steps show a 20x cost)
    if native:
        other = time_recipe(recipe, sample_tasks, min(steps, 3), bf16=not recipe.bf16, stages=("dense",))
    else:
        other = time_recipe(recipe, sample_tasks, 2, bf16=True, compile=False, stages=("dense",))
    precision = "bfloat16 autocast" if recipe.bf16 else "float32"
    other_name = "float32" if recipe.bf16 else "bf16 (emulated)" if not native else "bf16"
    how = "compiled" if recipe.compile else "eager (no C++ compiler for torch.compile)"

    shipped = json.loads((SHIPPED_CHECKPOINT / MANIFEST_FILE).read_text()).get("training", {})
    table = Table(
        title=f"training recipe cost on this machine ({cpu_name()}, {torch.get_num_threads()} threads, "
        f"native bfloat16: {'yes' if native else 'no'}; the recipe runs in {precision}, {how})"
    )
    cols = ("stage", "steps", "s/step", "s/step eager", "compile speed-up", f"s/step {other_name}", "minutes",
            "shipped run s/step")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "stage" else "right")
    table.add_row("data", f"{recipe.n_tasks:,} tasks", "-", "-", "-", "-", f"{chosen.data_minutes:.1f}",
                  f"{shipped.get('data_minutes', '-')} min")  # fmt: skip
    for stage, n in recipe.stage_steps():
        c, e = chosen.median_step_seconds[stage], eager.median_step_seconds[stage]
        o = other.median_step_seconds.get(stage)
        table.add_row(stage, f"{n:,}", f"{c:.2f}", f"{e:.2f}", f"{e / c:.2f}x", "-" if o is None else f"{o:.2f}",
                      f"{chosen.stage_minutes[stage]:.1f}",
                      str(shipped.get("median_step_seconds", {}).get(stage, "-")))  # fmt: skip
    table.add_row("[bold]recipe", "", "", f"{eager.minutes:.1f} min", f"{eager.minutes / chosen.minutes:.2f}x", "",
                  f"[bold]{chosen.minutes:.1f}", f"{shipped.get('recipe_minutes_at_median', '-')} min")  # fmt: skip
    console = Console()
    console.print(table)
    within = chosen.minutes <= BUDGET_MINUTES
    console.print(
        f"projected {chosen.minutes:.1f} min ({precision}, {how}) against the {BUDGET_MINUTES:.0f}-minute budget: "
        f"{'within' if within else 'OVER'}; eager {eager.minutes:.1f} min; the shipped run cost "
        f"{shipped.get('recipe_minutes_at_median')} min at its own medians ({shipped.get('cpu', 'CPU not recorded')})"
    )
    dense = chosen.median_step_seconds["dense"]
    other_dense = other.median_step_seconds["dense"]
    return {
        "recipe_minutes_projected": round(chosen.minutes, 1),
        "within_budget": within,
        "budget_minutes": BUDGET_MINUTES,
        "precision": "bf16" if recipe.bf16 else "float32",
        "compiled": bool(recipe.compile),
        "native_bf16": native,
        "median_step_seconds": {k: round(v, 3) for k, v in chosen.median_step_seconds.items()},
        "recipe_minutes_projected_eager": round(eager.minutes, 1),
        "compile_speedup_dense": round(eager.median_step_seconds["dense"] / dense, 2),
        "compile_speedup_recipe": round(eager.minutes / chosen.minutes, 2),
        "other_precision_dense_step_seconds": round(other_dense, 3),
        "precision_speedup_dense": round(other_dense / dense, 2),
        "data_minutes_projected": round(chosen.data_minutes, 2),
        "shipped_recipe_minutes_at_median": shipped.get("recipe_minutes_at_median"),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "sample_tasks": sample_tasks,
        "timed_steps_per_stage": steps,
        "quick": args.quick,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
