"""What the training recipe costs on *this* machine, before committing an hour to it.

The recipe's budget is 60 minutes on a 2-core machine, but machines of that size differ a lot: the shipped model's
run measured a median dense step of 0.60 s on the CPU it was trained on (AMX), a run of the same shape 1.14 s on an
AMD EPYC with AVX512-BF16, and an AVX2-only EPYC takes 1.4 s in float32 and 29 s in (emulated) bfloat16. This
benchmark times real training steps of every stage (`model_backend.local.train.time_recipe`: the recipe's shape,
real batches from a sample of the recipe's own data) at the precision `agentkit local train` picks on this CPU
(`Recipe.bf16=None`: bfloat16 autocast where the CPU has it natively, float32 elsewhere) and projects the full recipe.
The baseline, measured in the same run on the same batches, is the other precision: the whole recipe in float32
where bfloat16 is native, else two dense steps in emulated bfloat16 (what the choice avoids; the whole recipe would
take hours).

    python benchmarks/bench_train_speed.py           # 600 sample tasks, 12 timed steps per stage
    python benchmarks/bench_train_speed.py --quick   # 200 sample tasks, 5 timed steps per stage (about a minute)

The last line is one JSON object: recipe_minutes_projected, within_budget, precision, median_step_seconds, ...
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from model_backend.local.backend import MANIFEST_FILE, SHIPPED_CHECKPOINT
from model_backend.local.cpu import cpu_name, native_bf16
from model_backend.local.train import Recipe, time_recipe

BUDGET_MINUTES = 60.0


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
    if native:  # the whole recipe in float32 as the baseline
        other = time_recipe(recipe, sample_tasks, steps, bf16=False)
    else:  # emulated bfloat16: a dense step or two shows the cost; the whole recipe would take hours
        other = time_recipe(recipe, sample_tasks, 2, bf16=True, stages=("dense",))
    bf16_t, fp32_t = (chosen, other) if recipe.bf16 else (other, chosen)
    precision = "bfloat16 autocast" if recipe.bf16 else "float32"

    shipped = json.loads((SHIPPED_CHECKPOINT / MANIFEST_FILE).read_text()).get("training", {})
    table = Table(
        title=f"training recipe cost on this machine ({cpu_name()}, {torch.get_num_threads()} threads, "
        f"native bfloat16: {'yes' if native else 'no'}; the recipe runs in {precision})"
    )
    for col in ("stage", "steps", "s/step bf16", "s/step float32", "bf16 speed-up", "minutes", "shipped run s/step"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    table.add_row("data", f"{recipe.n_tasks:,} tasks", "-", "-", "-", f"{chosen.data_minutes:.1f}",
                  f"{shipped.get('data_minutes', '-')} min")  # fmt: skip
    for stage, n in recipe.stage_steps():
        b, f = bf16_t.median_step_seconds.get(stage), fp32_t.median_step_seconds.get(stage)
        table.add_row(stage, f"{n:,}", "-" if b is None else f"{b:.2f}", "-" if f is None else f"{f:.2f}",
                      "-" if b is None or f is None else f"{f / b:.2f}x", f"{chosen.stage_minutes[stage]:.1f}",
                      str(shipped.get("median_step_seconds", {}).get(stage, "-")))  # fmt: skip
    whole = f"{fp32_t.minutes / bf16_t.minutes:.2f}x" if native else "-"
    table.add_row("[bold]recipe", "", "", "", whole, f"[bold]{chosen.minutes:.1f}",
                  f"{shipped.get('recipe_minutes_at_median', '-')} min")  # fmt: skip
    console = Console()
    console.print(table)
    within = chosen.minutes <= BUDGET_MINUTES
    console.print(
        f"projected {chosen.minutes:.1f} min in {precision} against the {BUDGET_MINUTES:.0f}-minute budget: "
        f"{'within' if within else 'OVER'}; the shipped run cost {shipped.get('recipe_minutes_at_median')} min at "
        f"its own medians ({shipped.get('cpu', 'its CPU was not recorded')})"
    )
    dense_ratio = fp32_t.median_step_seconds["dense"] / bf16_t.median_step_seconds["dense"]
    return {
        "recipe_minutes_projected": round(chosen.minutes, 1),
        "within_budget": within,
        "budget_minutes": BUDGET_MINUTES,
        "precision": "bf16" if recipe.bf16 else "float32",
        "native_bf16": native,
        "median_step_seconds": {k: round(v, 3) for k, v in chosen.median_step_seconds.items()},
        "recipe_minutes_projected_fp32": round(fp32_t.minutes, 1),  # without native bf16, the chosen run itself
        "bf16_speedup_dense": round(dense_ratio, 2),
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
