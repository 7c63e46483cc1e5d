"""Figures from attempt records alone, so a resumed run, a merged set of shards and an uninterrupted run agree.

pass@1 is the mean over tasks of each task's pass rate; pass@k uses the unbiased estimator 1 - C(n-c, k)/C(n, k)
(Chen et al. 2021); pass^k = C(c, k)/C(n, k) (tau-bench: all k of k attempts pass). Intervals are 95% Wilson score
intervals with the number of tasks as n: right at 0% and 100% (0 of 10 is [0, 28], not [0, 0]), and never narrower
than the tasks allow when k attempts of one task are correlated.

Attempts that ended on an infrastructure failure (`infra`) are not outcomes: they are counted apart and left out of
every pass figure, so a flaky network does not pass for a weak model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentkit.envs.results import AttemptRecord

Z95 = 1.959963984540054


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: the chance that at least one of k attempts drawn from n (c correct) passes."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} attempts per task, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """tau-bench's pass^k: the chance that all k attempts drawn from n (c correct) pass."""
    if k > n:
        raise ValueError(f"pass^{k} needs at least {k} attempts per task, got {n}")
    return math.comb(c, k) / math.comb(n, k)


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion `p` observed over `n` (0 of 10 -> [0, 0.28]; n=0 -> [0, 1])."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if p <= 0 else lo, 1.0 if p >= 1 else hi)  # exact at the edges (no 0.9999999999999999)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class GroupStats:
    tasks: int
    attempts: int
    pass1: float
    pass1_ci: tuple[float, float]
    pass_k: float
    pass_k_ci: tuple[float, float]
    pass_hat_k: float
    pass_hat_k_ci: tuple[float, float]
    incomplete_tasks: int  # tasks with fewer than k scored attempts (left out of pass@k and pass^k)


@dataclass
class EvalSummary:
    k: int
    overall: GroupStats
    errors: int  # attempts that ended in an error of any kind (infrastructure ones included)
    statuses: dict[str, int]
    stats: dict[str, dict[str, float]]
    by_family: dict[str, GroupStats]
    by_difficulty: dict[str, GroupStats]
    total_cost: float
    total_tokens: int
    infra_errors: int = 0  # attempts lost to infrastructure (not outcomes; `--retry-errors` re-runs them)
    config: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None

    @property
    def pass1(self) -> float:
        return self.overall.pass1

    @property
    def tasks(self) -> int:
        return self.overall.tasks

    @property
    def attempts(self) -> int:
        return self.overall.attempts + self.infra_errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _group(records: Iterable[AttemptRecord], k: int) -> GroupStats:
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_task[r.task_id].append(r.passed)
    per1 = [sum(v) / len(v) for v in by_task.values()]
    complete = [v for v in by_task.values() if len(v) >= k]
    perk = [pass_at_k(len(v), sum(v), k) for v in complete]
    perhat = [pass_hat_k(len(v), sum(v), k) for v in complete]

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    return GroupStats(
        tasks=len(by_task),
        attempts=sum(len(v) for v in by_task.values()),
        pass1=mean(per1),
        pass1_ci=wilson(mean(per1), len(per1)),
        pass_k=mean(perk),
        pass_k_ci=wilson(mean(perk), len(perk)),
        pass_hat_k=mean(perhat),
        pass_hat_k_ci=wilson(mean(perhat), len(perhat)),
        incomplete_tasks=len(by_task) - len(complete),
    )


def summarize(records: Sequence[AttemptRecord], *, k: int = 1, config: dict[str, Any] | None = None) -> EvalSummary:
    """All figures from attempt records alone (so resume, merge, compare and report agree)."""
    statuses: dict[str, int] = defaultdict(int)
    fam: dict[str, list[AttemptRecord]] = defaultdict(list)
    dif: dict[str, list[AttemptRecord]] = defaultdict(list)
    scored = [r for r in records if not r.infra]
    for r in records:
        statuses["infra_error" if r.infra else r.status] += 1
    for r in scored:
        fam[r.family].append(r)
        dif[str(r.difficulty)].append(r)
    metrics = {
        "turns": [float(r.turns) for r in scored],
        "tool_calls": [float(r.tool_calls) for r in scored],
        "tokens": [float(r.total_tokens) for r in scored],
        "reasoning_tokens": [float(r.reasoning_tokens) for r in scored],
        "cost": [r.cost for r in scored],
        "wall_time": [r.wall_time for r in scored],
    }
    stats = {
        name: {"mean": (sum(v) / len(v)) if v else 0.0, "p50": percentile(v, 0.5), "p95": percentile(v, 0.95)}
        for name, v in metrics.items()
    }
    infra = sum(r.infra for r in records)
    return EvalSummary(
        k=k,
        overall=_group(scored, k),
        errors=sum(r.status == "error" or r.infra for r in records),
        statuses=dict(sorted(statuses.items())),
        stats=stats,
        by_family={name: _group(rs, k) for name, rs in sorted(fam.items())},
        by_difficulty={name: _group(rs, k) for name, rs in sorted(dif.items(), key=lambda kv: int(kv[0]))},
        total_cost=sum(r.cost for r in records),
        total_tokens=sum(r.total_tokens for r in records),
        infra_errors=infra,
        config=dict(config or {}),
    )


@dataclass
class Comparison:
    a: EvalSummary
    b: EvalSummary
    gained: list[str]  # tasks that fail in A (pass@1 < 0.5) and pass in B
    lost: list[str]


def compare(a: Sequence[AttemptRecord], b: Sequence[AttemptRecord], *, k: int | None = None, ka: int = 1, kb: int = 1,
            config_a: dict[str, Any] | None = None, config_b: dict[str, Any] | None = None) -> Comparison:  # fmt: skip
    """Side by side over the tasks both files score; a task 'flips' when its majority verdict changes.
    `ka`/`kb`: each file's own k (as recorded); `k` overrides both."""

    def verdicts(rs: Sequence[AttemptRecord]) -> dict[str, bool]:
        by: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            if not r.infra:
                by[r.task_id].append(r.passed)
        return {t: sum(v) / len(v) >= 0.5 for t, v in by.items()}

    va, vb = verdicts(a), verdicts(b)
    common = va.keys() & vb.keys()
    return Comparison(
        a=summarize([r for r in a if r.task_id in common], k=k or ka, config=config_a),
        b=summarize([r for r in b if r.task_id in common], k=k or kb, config=config_b),
        gained=sorted(t for t in common if not va[t] and vb[t]),
        lost=sorted(t for t in common if va[t] and not vb[t]),
    )
