"""What the training recipe costs on *this* machine, before committing an hour to it.

The recipe's budget is 60 minutes on a 2-core machine, but two machines of that size differ: the shipped model's run
measured a median dense step of 0.60 s on the CPU it was trained on, and a run of the same shape 1.14 s on an AMD
EPYC (AVX512-BF16, no AMX) of the same size. This benchmark times real training steps of every stage
(`model_backend.local.train.time_recipe`: the recipe's shape, real batches from a sample of the recipe's own data)
and projects the full recipe. The baseline, measured in the same run on the same batches, is the same recipe in
float32, i.e. without its bfloat16 autocast.

    python benchmarks/bench_train_speed.py           # 600 sample tasks, 12 timed steps per stage
    python benchmarks/bench_train_speed.py --quick   # 200 sample tasks, 5 timed steps per stage (under a minute)

The last line is one JSON object: recipe_minutes_projected, within_budget, median_step_seconds, ...
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from model_backend.local.backend import SHIPPED_CHECKPOINT
from model_backend.local.train import Recipe, cpu_name, time_recipe

BUDGET_MINUTES = 60.0


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 sample tasks, 5 timed steps per stage")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, as `agentkit local train` (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = Recipe()
    sample_tasks, steps = (200, 5) if args.quick else (600, 12)
    bf16 = time_recipe(recipe, sample_tasks, steps)
    fp32 = time_recipe(recipe, sample_tasks, steps, bf16=False)

    shipped = json.loads((SHIPPED_CHECKPOINT / "manifest.json").read_text()).get("training", {})
    table = Table(title=f"training recipe cost on this machine ({cpu_name()}, {torch.get_num_threads()} threads)")
    for col in ("stage", "steps", "s/step bf16", "s/step float32", "bf16 speed-up", "minutes", "shipped run s/step"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    table.add_row("data", f"{recipe.n_tasks:,} tasks", "-", "-", "-", f"{bf16.data_minutes:.1f}",
                  f"{shipped.get('data_minutes', '-')} min")  # fmt: skip
    for stage, n in recipe.stage_steps():
        b, f = bf16.median_step_seconds[stage], fp32.median_step_seconds[stage]
        table.add_row(stage, f"{n:,}", f"{b:.2f}", f"{f:.2f}", f"{f / b:.2f}x", f"{bf16.stage_minutes[stage]:.1f}",
                      str(shipped.get("median_step_seconds", {}).get(stage, "-")))  # fmt: skip
    table.add_row("[bold]recipe", "", "", "", f"{fp32.minutes / bf16.minutes:.2f}x", f"[bold]{bf16.minutes:.1f}",
                  f"{shipped.get('recipe_minutes_at_median', '-')} min")  # fmt: skip
    console = Console()
    console.print(table)
    within = bf16.minutes <= BUDGET_MINUTES
    console.print(
        f"projected {bf16.minutes:.1f} min (float32: {fp32.minutes:.1f}) against the {BUDGET_MINUTES:.0f}-minute "
        f"budget: {'within' if within else 'OVER'}; the shipped run cost {shipped.get('recipe_minutes_at_median')} "
        f"min at its own medians ({shipped.get('cpu', 'its CPU was not recorded')})"
    )
    return {
        "recipe_minutes_projected": round(bf16.minutes, 1),
        "within_budget": within,
        "budget_minutes": BUDGET_MINUTES,
        "median_step_seconds": {k: round(v, 3) for k, v in bf16.median_step_seconds.items()},
        "recipe_minutes_projected_fp32": round(fp32.minutes, 1),
        "bf16_speedup_dense": round(fp32.median_step_seconds["dense"] / bf16.median_step_seconds["dense"], 2),
        "data_minutes_projected": round(bf16.data_minutes, 2),
        "shipped_recipe_minutes_at_median": shipped.get("recipe_minutes_at_median"),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "sample_tasks": sample_tasks,
        "timed_steps_per_stage": steps,
        "quick": args.quick,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
