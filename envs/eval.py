"""The eval harness: run any agent over a task set, K attempts per task, and report numbers you can trust.

Four properties shape it:
- Every attempt runs in its own `Episode` (a private copy of the state; its own sandbox where the family needs code),
  so attempts never see each other's writes.
- Nothing is lost: each finished attempt is one line appended to the results store (`agentkit.envs.results`) as
  it finishes. Re-running the same command resumes (finished attempts are skipped); a SIGKILL costs at most the
  attempts in flight; a corrupt line is reported and skipped, never cut away.
- Errors are not outcomes: an attempt lost to the infrastructure is marked (`infra`), left out of the pass figures,
  and re-run by `retry_errors=True`.
- The summary is computed from the records alone (`agentkit.envs.metrics.summarize`), so a resumed run, merged
  shards and an uninterrupted run report the same figures. Where attempts run is the executor's business
  (`agentkit.envs.executors`: this process, or a Ray cluster).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.envs.attempt import (
    DEFAULT_MAX_TURNS,
    DEFAULT_SYSTEM_PROMPT,
    AgentFactory,
    AgentSpec,
    default_agent_factory,
    is_infra_error,
    needs_python,
    preflight,
    run_attempt,
)
from agentkit.envs.executors import Executor, LocalExecutor, ShardSpec, shard_tasks
from agentkit.envs.metrics import (
    Comparison,
    EvalSummary,
    GroupStats,
    compare,
    pass_at_k,
    pass_hat_k,
    percentile,
    summarize,
    wilson,
)
from agentkit.envs.results import (
    RESULTS_VERSION,
    AttemptRecord,
    EvalError,
    LineProblem,
    ResultsStore,
    StoreMismatchError,
    compress_transcript,
    load_results,
)
from agentkit.envs.spec import LineError, TaskRecord, iter_jsonl

__all__ = [
    "DEFAULT_MAX_TURNS", "DEFAULT_SYSTEM_PROMPT", "RESULTS_VERSION", "AgentFactory", "AgentSpec", "AttemptRecord",
    "Comparison", "EvalError", "EvalSummary", "GroupStats", "LineProblem", "Progress", "ResultsStore", "compare",
    "compress_transcript", "default_agent_factory", "evaluate", "is_infra_error", "load_results", "load_tasks",
    "needs_python", "pass_at_k", "pass_hat_k", "percentile", "preflight", "run_attempt", "summarize", "wilson",
]  # fmt: skip


def load_tasks(path: str | os.PathLike[str], *, on_error: Callable[[LineError], None] | None = None) -> list[TaskRecord]:
    """Tasks of a JSONL file; bad lines are reported (with their number) and skipped, never fatal."""
    p = Path(path)
    if not p.exists():
        raise EvalError(f"task file {path} does not exist: create one with `agentkit envs generate --out {path}`")
    if not p.is_file():
        raise EvalError(f"task file {path} is not a file")
    tasks = []
    try:
        for _, item in iter_jsonl(path):
            if isinstance(item, LineError):
                if on_error is not None:
                    on_error(item)
                continue
            tasks.append(item)
    except OSError as exc:
        raise EvalError(f"cannot read task file {path}: {exc.strerror or exc}") from None
    return tasks


@dataclass
class Progress:
    """Running totals for a live display, with an ETA from this run's own pace."""

    total: int
    done: int = 0
    passed: int = 0
    tokens: int = 0
    cost: float = 0.0
    errors: int = 0
    infra_errors: int = 0
    resumed: int = 0  # attempts already in the store when the run started
    started: float = field(default_factory=time.monotonic)

    def add(self, r: AttemptRecord, *, resumed: bool = False) -> None:
        self.done += 1
        self.resumed += resumed
        self.passed += r.passed
        self.tokens += r.total_tokens
        self.cost += r.cost
        self.errors += r.status == "error"
        self.infra_errors += r.infra

    @property
    def rate(self) -> float:
        """Attempts per second in this run (resumed ones not counted)."""
        elapsed = time.monotonic() - self.started
        fresh = self.done - self.resumed
        return fresh / elapsed if elapsed > 0 and fresh else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at this run's pace; None until an attempt has finished."""
        rate = self.rate
        return (self.total - self.done) / rate if rate else None


async def evaluate(
    agent_factory: AgentFactory | None,
    tasks: Sequence[TaskRecord],
    *,
    k: int = 1,
    concurrency: int = 8,
    out: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    max_cost: float | None = None,
    max_tasks: int | None = None,
    sandbox_pool: Any = None,
    on_attempt: Callable[[AttemptRecord, Progress], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    retry_errors: bool = False,
    shard: ShardSpec | None = None,
    executor: Executor | None = None,
) -> EvalSummary:
    """Run every task `k` times and return the summary.

    Attempts run on `executor` (default: `LocalExecutor(agent_factory, concurrency=...)`, this process). With `out`,
    attempts are appended to that results store as they finish and finished ones are skipped (resume); with
    `retry_errors`, attempts that ended on an infrastructure error are run again. `config` (model, provider, ...) is
    recorded in the store; resuming with a different config is refused. `max_cost` stops scheduling new attempts
    once the run (resumed part included) has cost that much. `shard` keeps only that shard's tasks (after
    `max_tasks`, so the shards of a run cover exactly the tasks an unsharded run would).
    """
    if k < 1 or concurrency < 1:
        raise EvalError("k and concurrency must be at least 1")
    if max_tasks is not None and max_tasks < 1:
        raise EvalError(f"max_tasks must be at least 1, got {max_tasks}")
    tasks = list(tasks)[:max_tasks] if max_tasks else list(tasks)
    tasks = shard_tasks(tasks, shard)
    ids = [t.task.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise EvalError("the task set has duplicate task ids; regenerate it or deduplicate it")
    config = dict(config or {})
    warn = on_warning or (lambda _msg: None)
    store = ResultsStore(out) if out is not None else None
    records: dict[tuple[str, int], AttemptRecord] = {}
    if store is not None:
        loaded = store.read()
        for problem in loaded.problems:
            warn(f"{out}: {problem} (skipped; `agentkit eval repair` removes it, keeping a backup)")
        if loaded.header is not None:
            if loaded.header.get("config", {}) != config:
                raise StoreMismatchError(f"{out} holds results of another configuration ({loaded.header.get('config')}); "
                                "use a different --out, or delete the file to start over")  # fmt: skip
            if loaded.header.get("shard") != (str(shard) if shard else None):
                raise StoreMismatchError(f"{out} holds results of shard {loaded.header.get('shard')}, not {shard}; "
                                "give each shard its own --out")  # fmt: skip
        records = {r.key: r for r in loaded.records}
    keep = set(ids)
    wanted = [(t, a) for t in tasks for a in range(k)]
    done = {key for key, r in records.items() if not (retry_errors and r.infra)}
    pending = [(t, a) for t, a in wanted if (t.task.task_id, a) not in done]
    progress = Progress(total=len(wanted))
    for key, r in records.items():
        if key in done and key[0] in keep and key[1] < k:
            progress.add(r, resumed=True)

    stopped: list[str] = []
    if max_cost is not None and progress.cost >= max_cost and pending:
        stopped.append(f"stopped early: the run cost ${progress.cost:.4f}, reaching --max-cost ${max_cost:g}")
        pending = []
    if executor is None:
        if agent_factory is None:
            raise EvalError("evaluate needs an agent_factory or an executor")
        executor = LocalExecutor(agent_factory, concurrency=concurrency, sandbox_pool=sandbox_pool)
    appender = store.open({"config": config, "shard": str(shard) if shard else None}) if store and pending else None
    fresh: set[tuple[str, int]] = set()

    def emit(rec: AttemptRecord) -> bool:
        if rec.key in fresh:
            return True  # a re-delivered attempt (a worker that died after finishing it): keep the first
        fresh.add(rec.key)
        records[rec.key] = rec
        if appender is not None:
            appender.append(rec)
        progress.add(rec)
        if on_attempt is not None:
            on_attempt(rec, progress)
        if max_cost is not None and progress.cost >= max_cost:
            if not stopped:
                stopped.append(f"stopped early: the run cost ${progress.cost:.4f}, reaching --max-cost ${max_cost:g}")
            return False
        return True

    try:
        if pending:
            await executor.run(pending, emit, k=k, config=config)
    finally:
        if appender is not None:
            appender.close()
    final = [r for key, r in records.items() if key[0] in keep and key[1] < k]
    summary = summarize(final, k=k, config=config)
    summary.stopped = stopped[0] if stopped else None
    return summary
