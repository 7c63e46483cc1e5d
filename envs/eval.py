"""The eval harness: run any agent over a task set, K attempts per task, and report numbers you can trust.

Three properties shape it:
- Every attempt runs in its own `Episode` (a private copy of the state; its own sandbox where the family needs code),
  so attempts never see each other's writes.
- Nothing is lost: each finished attempt is one JSON line, appended and flushed as it finishes. Re-running the
  same command resumes (finished attempts are skipped); a SIGKILL costs at most the attempts in flight, and a torn
  last line is repaired on resume. A crashing attempt is recorded as an error and the run goes on.
- The summary is computed from the records alone (`summarize`), so a resumed run and an uninterrupted one report the
  same figures, and `agentkit eval compare` works on any two files.

Metrics: pass@1 (mean over attempts), pass@k with the unbiased estimator 1 - C(n-c, k)/C(n, k) (Chen et al. 2021),
pass^k = C(c, k)/C(n, k) (tau-bench's reliability: all k of k attempts pass), each with a bootstrap 95% interval
over tasks; means and p50/p95 of turns, tokens, cost and time; per family and per difficulty.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import math
import os
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentkit.errors import AgentkitError
from agentkit.loop import Agent
from agentkit.messages import Message, dump_messages, parse_messages
from agentkit.envs.runtime import PYTHON_IMPL, Episode, SandboxPython
from agentkit.envs.spec import LineError, TaskRecord, iter_jsonl

RESULTS_VERSION = 1
DEFAULT_SYSTEM_PROMPT = (
    "You are an agent that completes tasks by calling the tools you are given. Look up every value you need with the "
    "tools; never guess identifiers or numbers. Make exactly the changes the task asks for and no others. When you "
    "are done, reply with a short final answer that states any value the task asks you to report."
)

AgentFactory = Callable[[Episode], Agent | Awaitable[Agent]]


class EvalError(AgentkitError):
    """The eval cannot run as asked (unreadable task file, results of another configuration in --out, ...)."""


# --------------------------------------------------------------------------------------------------------------------
# Records


@dataclass
class AttemptRecord:
    """One attempt at one task: the line of a results file."""

    task_id: str
    attempt: int
    family: str
    difficulty: int
    passed: bool
    status: str
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit_tokens: int = 0
    cost: float = 0.0
    wall_time: float = 0.0
    output: str | None = None
    transcript_z: str = ""  # zlib-compressed JSON transcript, base64: the full run, reasoning included
    kind: str = "attempt"

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.attempt)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def transcript(self) -> list[Message]:
        if not self.transcript_z:
            return []
        return parse_messages(zlib.decompress(base64.b64decode(self.transcript_z)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttemptRecord:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def compress_transcript(messages: Sequence[Message]) -> str:
    raw = json.dumps(dump_messages(list(messages)), ensure_ascii=False).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


class ResultsFile:
    """An append-only JSONL file of attempts, with a header line naming the configuration that produced it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> tuple[dict[str, Any] | None, list[AttemptRecord]]:
        """Header and records; a torn last line (a killed writer) is dropped and cut from the file."""
        if not self.path.exists():
            return None, []
        data = self.path.read_bytes()
        header, records = None, []
        good_end = 0
        pos = 0
        for raw in data.splitlines(keepends=True):
            pos += len(raw)
            if not raw.endswith(b"\n"):
                break  # torn: written without its newline when the process died
            try:
                obj = json.loads(raw)
            except ValueError:
                break
            good_end = pos
            if obj.get("kind") == "header":
                header = obj
            elif obj.get("kind") == "attempt":
                records.append(AttemptRecord.from_dict(obj))
        if good_end < len(data):
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        return header, records

    def open_for_append(self, header: dict[str, Any]) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing, _ = self.load()
        f = self.path.open("a", encoding="utf-8")
        if existing is None:
            self._write(f, header)
        return f

    @staticmethod
    def _write(f: Any, obj: dict[str, Any]) -> None:
        # One write of a whole line, flushed to the kernel: a killed process (even SIGKILL) loses nothing written.
        # No fsync per line: it costs ~5 ms here and only guards against a machine crash; `close()` syncs.
        f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.flush()

    def append(self, f: Any, record: AttemptRecord) -> None:
        self._write(f, asdict(record))


def load_results(path: str | os.PathLike[str]) -> list[AttemptRecord]:
    return ResultsFile(path).load()[1]


def load_tasks(path: str | os.PathLike[str], *, on_error: Callable[[LineError], None] | None = None) -> list[TaskRecord]:
    """Tasks of a JSONL file; bad lines are reported (with their number) and skipped, never fatal."""
    if not Path(path).exists():
        raise EvalError(f"task file {path} does not exist: create one with `agentkit envs generate --out {path}`")
    tasks = []
    for _, item in iter_jsonl(path):
        if isinstance(item, LineError):
            if on_error is not None:
                on_error(item)
            continue
        tasks.append(item)
    return tasks


# --------------------------------------------------------------------------------------------------------------------
# Running


def needs_python(record: TaskRecord) -> bool:
    return any(t.impl == PYTHON_IMPL for t in record.environment.tools)


def default_agent_factory(
    backend: Any,
    *,
    thinking: bool | None = None,
    max_turns: int = 20,
    deadline: float | None = 600.0,
    system_prompt: str | Callable[[TaskRecord], str] = DEFAULT_SYSTEM_PROMPT,
    max_tokens: int | None = None,
) -> AgentFactory:
    """Agents over `backend` with the episode's tools and a system prompt (text, or a function of the task: a model
    trained on `agentkit.envs.trajectories` expects the prompt it was trained with)."""

    def make(episode: Episode) -> Agent:
        prompt = system_prompt(episode.record) if callable(system_prompt) else system_prompt
        return Agent(backend, episode.tools(), system_prompt=prompt, thinking=thinking, max_turns=max_turns,
                     deadline=deadline, max_tokens=max_tokens)  # fmt: skip

    return make


@dataclass
class Progress:
    """Running totals for a live display."""

    total: int
    done: int = 0
    passed: int = 0
    tokens: int = 0
    cost: float = 0.0
    errors: int = 0

    def add(self, r: AttemptRecord) -> None:
        self.done += 1
        self.passed += r.passed
        self.tokens += r.total_tokens
        self.cost += r.cost
        self.errors += r.status == "error"


async def run_attempt(record: TaskRecord, attempt: int, factory: AgentFactory, sandbox_pool: Any = None) -> AttemptRecord:
    """One attempt; never raises (cancellation aside): a crash becomes an `error` record."""
    t = record.task
    base = AttemptRecord(t.task_id, attempt, t.family, t.difficulty, passed=False, status="error")
    started = time.monotonic()
    sandbox = None
    try:
        python = None
        if needs_python(record):
            if sandbox_pool is None:
                raise EvalError("this task needs the Python sandbox, but no sandbox pool is available (is Docker running?)")
            sandbox = await sandbox_pool.acquire()
            python = SandboxPython(sandbox)
        episode = Episode(record, python=python)
        made = factory(episode)
        agent = await made if inspect.isawaitable(made) else made
        result = await agent.run(t.instruction)
        verdict = episode.score(result.output)
        u = result.usage
        base.status = result.status
        base.passed = verdict.passed and result.status == "completed"
        base.failures = list(verdict.failures)
        if result.status != "completed":
            base.failures.insert(0, f"run ended with status {result.status}" + (f": {result.error}" if result.error else ""))
        base.error = result.error
        base.turns, base.tool_calls, base.tool_errors = result.turns, result.tool_calls, result.tool_errors
        base.prompt_tokens, base.completion_tokens = u.prompt_tokens, u.completion_tokens
        base.reasoning_tokens, base.cache_hit_tokens = u.reasoning_tokens, u.cache_hit_tokens
        base.cost, base.output = result.cost, result.output
        base.transcript_z = compress_transcript(result.messages)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one crashing task must not end the eval
        base.status, base.error = "error", f"{type(exc).__name__}: {exc}"
        base.failures = [f"attempt crashed: {base.error}"]
    finally:
        if sandbox is not None:
            await sandbox_pool.release(sandbox)
    base.wall_time = time.monotonic() - started
    return base


async def evaluate(
    agent_factory: AgentFactory,
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
) -> EvalSummary:
    """Run every task `k` times with at most `concurrency` attempts in flight; return the summary.

    With `out`, attempts are appended to that JSONL file as they finish and finished ones are skipped (resume).
    `config` (model, provider, ...) is written in the file's header; resuming with a different config is refused.
    `max_cost` stops scheduling new attempts once the run (resumed part included) has cost that much.
    """
    if k < 1 or concurrency < 1:
        raise EvalError("k and concurrency must be at least 1")
    tasks = list(tasks)[:max_tasks] if max_tasks else list(tasks)
    ids = [t.task.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise EvalError("the task set has duplicate task ids; regenerate it or deduplicate it")
    config = config or {}
    results = ResultsFile(out) if out is not None else None
    records: list[AttemptRecord] = []
    if results is not None:
        header, records = results.load()
        if header is not None and header.get("config", {}) != config:
            raise EvalError(
                f"{out} holds results of another configuration ({header.get('config')}); "
                "use a different --out, or delete the file to start over"
            )
    done_keys = {r.key for r in records}
    pending = [(t, a) for t in tasks for a in range(k) if (t.task.task_id, a) not in done_keys]
    progress = Progress(total=len(tasks) * k)
    for r in records:
        progress.add(r)

    own_pool = None
    if sandbox_pool is None and any(needs_python(t) for t, _ in pending):
        sandbox_pool = own_pool = await _open_sandbox_pool(concurrency)

    file = results.open_for_append({"kind": "header", "version": RESULTS_VERSION, "config": config}) if results else None
    queue: asyncio.Queue[tuple[TaskRecord, int]] = asyncio.Queue()
    for item in pending:
        queue.put_nowait(item)
    stopped: list[str] = []

    async def worker() -> None:
        while not queue.empty():
            if max_cost is not None and progress.cost >= max_cost:
                if not stopped:
                    stopped.append(f"stopped early: the run cost ${progress.cost:.4f}, reaching --max-cost ${max_cost:g}")
                return
            task, attempt = queue.get_nowait()
            rec = await run_attempt(task, attempt, agent_factory, sandbox_pool)
            records.append(rec)
            if file is not None and results is not None:
                results.append(file, rec)
            progress.add(rec)
            if on_attempt is not None:
                on_attempt(rec, progress)

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, max(len(pending), 1))):
                tg.create_task(worker())
    finally:
        if file is not None:
            file.flush()
            os.fsync(file.fileno())
            file.close()
        if own_pool is not None:
            await own_pool.close()
    keep = set(ids)
    summary = summarize([r for r in records if r.task_id in keep], k=k)
    summary.stopped = stopped[0] if stopped else None
    return summary


async def _open_sandbox_pool(concurrency: int) -> Any:
    try:
        from agentkit.sandbox import SandboxPool
    except ImportError as exc:  # pragma: no cover - the sandbox ships with agentkit
        raise EvalError(f"tasks need the Python sandbox, which cannot be imported: {exc}") from exc
    return SandboxPool(size=min(concurrency, 4))


# --------------------------------------------------------------------------------------------------------------------
# Metrics


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


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_ci(per_task: Sequence[float], *, samples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean over tasks (deterministic seed: the same records give the same interval)."""
    n = len(per_task)
    if n == 0:
        return (0.0, 0.0)
    if n == 1 or len(set(per_task)) == 1:
        return (per_task[0], per_task[0]) if len(set(per_task)) == 1 else (min(per_task), max(per_task))
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(per_task, k=n)) / n for _ in range(samples))
    return (means[int(0.025 * samples)], means[int(0.975 * samples) - 1])


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
    incomplete_tasks: int  # tasks with fewer than k attempts (left out of pass@k and pass^k)


@dataclass
class EvalSummary:
    k: int
    overall: GroupStats
    errors: int
    statuses: dict[str, int]
    stats: dict[str, dict[str, float]]
    by_family: dict[str, GroupStats]
    by_difficulty: dict[str, GroupStats]
    total_cost: float
    total_tokens: int
    stopped: str | None = None

    @property
    def pass1(self) -> float:
        return self.overall.pass1

    @property
    def tasks(self) -> int:
        return self.overall.tasks

    @property
    def attempts(self) -> int:
        return self.overall.attempts

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
        pass1_ci=bootstrap_ci(per1),
        pass_k=mean(perk),
        pass_k_ci=bootstrap_ci(perk),
        pass_hat_k=mean(perhat),
        pass_hat_k_ci=bootstrap_ci(perhat),
        incomplete_tasks=len(by_task) - len(complete),
    )


def summarize(records: Sequence[AttemptRecord], *, k: int = 1) -> EvalSummary:
    """All figures from attempt records alone (so resume, compare and report agree)."""
    statuses: dict[str, int] = defaultdict(int)
    fam: dict[str, list[AttemptRecord]] = defaultdict(list)
    dif: dict[str, list[AttemptRecord]] = defaultdict(list)
    for r in records:
        statuses[r.status] += 1
        fam[r.family].append(r)
        dif[str(r.difficulty)].append(r)
    metrics = {
        "turns": [float(r.turns) for r in records],
        "tool_calls": [float(r.tool_calls) for r in records],
        "tokens": [float(r.total_tokens) for r in records],
        "reasoning_tokens": [float(r.reasoning_tokens) for r in records],
        "cost": [r.cost for r in records],
        "wall_time": [r.wall_time for r in records],
    }
    stats = {
        name: {"mean": (sum(v) / len(v)) if v else 0.0, "p50": percentile(v, 0.5), "p95": percentile(v, 0.95)}
        for name, v in metrics.items()
    }
    return EvalSummary(
        k=k,
        overall=_group(records, k),
        errors=statuses.get("error", 0),
        statuses=dict(sorted(statuses.items())),
        stats=stats,
        by_family={name: _group(rs, k) for name, rs in sorted(fam.items())},
        by_difficulty={name: _group(rs, k) for name, rs in sorted(dif.items(), key=lambda kv: int(kv[0]))},
        total_cost=sum(r.cost for r in records),
        total_tokens=sum(r.total_tokens for r in records),
    )


@dataclass
class Comparison:
    a: EvalSummary
    b: EvalSummary
    gained: list[str]  # tasks that fail in A (pass@1 < 0.5) and pass in B
    lost: list[str]


def compare(a: Sequence[AttemptRecord], b: Sequence[AttemptRecord], *, k: int = 1) -> Comparison:
    """Side by side over the tasks both files hold; a task 'flips' when its majority verdict changes."""
    def verdicts(rs: Sequence[AttemptRecord]) -> dict[str, bool]:
        by: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            by[r.task_id].append(r.passed)
        return {t: sum(v) / len(v) >= 0.5 for t, v in by.items()}

    va, vb = verdicts(a), verdicts(b)
    common = va.keys() & vb.keys()
    return Comparison(
        a=summarize([r for r in a if r.task_id in common], k=k),
        b=summarize([r for r in b if r.task_id in common], k=k),
        gained=sorted(t for t in common if not va[t] and vb[t]),
        lost=sorted(t for t in common if va[t] and not vb[t]),
    )
