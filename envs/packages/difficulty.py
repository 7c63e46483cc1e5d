"""Difficulty by measurement, as DeepSeek and Prime Intellect do: a solver (any backend) makes k attempts at each
candidate through the eval harness; a task is kept when its pass rate lies in the band (default: solved at least
once, not always), and the measured rate becomes its difficulty (`meta["pass_rate"]`, and `task.difficulty` 1-5
from it: 1 for a rate near 1, 5 for a rate near 0)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.envs.eval import AgentFactory, evaluate, load_results
from agentkit.envs.spec import TaskRecord


@dataclass
class Band:
    low: float = 0.0
    high: float = 1.0
    """Kept when low < rate < high, or equal to a bound given as inclusive."""
    include_low: bool = False
    include_high: bool = False

    def holds(self, rate: float) -> bool:
        above = rate >= self.low if self.include_low else rate > self.low
        below = rate <= self.high if self.include_high else rate < self.high
        return above and below

    @classmethod
    def parse(cls, text: str) -> Band:
        """'0,1' (exclusive, the default), '[0.1,0.9]' (inclusive), '(0,0.5]'."""
        t = text.strip()
        lo_inc, hi_inc = t.startswith("["), t.endswith("]")
        lo, hi = (float(x) for x in t.strip("[]()").split(","))
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"a pass-rate band is two rates 0 <= low <= high <= 1, got {text!r}")
        return cls(lo, hi, lo_inc, hi_inc)


def difficulty_of(rate: float) -> int:
    return max(1, min(5, 1 + round(4 * (1 - rate))))


async def measure(tasks: list[TaskRecord], factory: AgentFactory, *, k: int = 8, band: Band | None = None,
                  concurrency: int = 4, sandbox_pool: Any = None, out: str | Path | None = None,
                  solver: str = "") -> tuple[list[TaskRecord], dict[str, float]]:  # fmt: skip
    """(the tasks kept, with their measured rate and difficulty; every task's rate). Infrastructure errors are
    left out of a rate; a task with no valid attempt is dropped."""
    import tempfile

    band = band or Band()
    with tempfile.TemporaryDirectory(prefix="agentkit-difficulty-") as tmp:
        store = Path(out) if out else Path(tmp) / "attempts.jsonl"
        await evaluate(factory, tasks, k=k, concurrency=concurrency, sandbox_pool=sandbox_pool, out=store)
        attempts = load_results(store)
    per: dict[str, list[bool]] = {}
    for a in attempts:
        if not a.infra:
            per.setdefault(a.task_id, []).append(a.passed)
    rates = {tid: sum(v) / len(v) for tid, v in per.items() if v}
    kept = []
    for t in tasks:
        rate = rates.get(t.task.task_id)
        if rate is None or not band.holds(rate):
            continue
        t.meta["pass_rate"], t.meta["solver"], t.meta["solver_k"] = round(rate, 4), solver, len(per[t.task.task_id])
        t.task.difficulty = difficulty_of(rate)
        kept.append(t)
    return kept, rates
