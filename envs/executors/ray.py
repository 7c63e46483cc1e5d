"""Attempts on a Ray cluster (`pip install 'agentkit[ray]'`; `agentkit eval --executor ray [--address ...]`).

One worker actor per node (Ray's SPREAD placement), each with its own backend, its own sandbox pool (opened on the
node when a task needs one) and at most `concurrency` attempts in flight. The driver keeps the queue and the
results store: each finished attempt streams back as a plain dict and is appended on the driver, so resume,
`--retry-errors` and the summary are exactly those of a local run. Backpressure: the driver submits an attempt
only when a worker has a free slot, so neither the driver nor the object store holds more than
workers x concurrency attempts at once, whatever the size of the task set.

A worker that dies (its process killed, its node gone) fails the attempts it had in flight; the driver puts them
back at the head of the queue for the surviving workers and starts a replacement (SPREAD: on a node with room,
usually the same one when only the process died). The replacement takes work once it answers; one that cannot be
placed within `replace_timeout` seconds (its node gone and no room elsewhere) is given up, and the survivors carry
on. At most `max_replacements` per executor, so a worker that dies on every attempt cannot loop forever. The store
only ever receives finished attempts and `evaluate` ignores a second delivery of a key, so nothing is lost and
nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Sequence
from typing import Any

from agentkit.envs.attempt import AgentSpec
from agentkit.envs.executors import Emit, Item
from agentkit.envs.results import AttemptRecord, EvalError


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise EvalError("--executor ray needs Ray: pip install 'agentkit[ray]'") from None
    return ray


def connect(address: str | None = None) -> Any:
    """The `ray` module, initialised: joins the cluster at `address`, else the one this process already joined,
    else starts a local one."""
    ray = ray_module()
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


class EvalWorker:
    """The actor: builds its agent from an `AgentSpec` on its own node, then runs attempts sent to it."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.factory: Any = None
        self.pool: Any = None
        self._lock: asyncio.Lock | None = None

    async def _ready(self, needs_pool: bool) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.factory is None:
                self.factory = self.spec.factory(self.spec.backend())
            if needs_pool and self.pool is None:
                from agentkit.envs.executors.local import open_sandbox_pool

                self.pool = await open_sandbox_pool(8)

    async def run(self, task_line: str, attempt: int, k: int, config: dict[str, Any]) -> dict[str, Any]:
        from agentkit.envs.attempt import needs_python, run_attempt
        from agentkit.envs.spec import TaskRecord

        record = TaskRecord.from_json(task_line)
        await self._ready(needs_python(record))
        rec = await run_attempt(record, attempt, self.factory, self.pool, k=k, config=config)
        return rec.to_dict()

    def where(self) -> tuple[str, int]:
        import os

        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


class RayExecutor:
    def __init__(self, spec: AgentSpec, *, address: str | None = None, concurrency: int = 8, workers: int | None = None,
                 num_cpus: float = 1, max_item_failures: int = 3, max_replacements: int = 8,
                 replace_timeout: float = 120.0) -> None:  # fmt: skip
        if concurrency < 1:
            raise EvalError("concurrency must be at least 1")
        self.spec = spec
        self.address = address
        self.concurrency = concurrency
        self.workers = workers
        self.num_cpus = num_cpus
        self.max_item_failures = max_item_failures
        self.actors: list[Any] = []
        self.dead: set[int] = set()
        self.max_replacements = max_replacements
        self.replace_timeout = replace_timeout
        self.deaths = 0  # workers lost during the run (their attempts were re-queued)
        self.replaced = 0  # replacements that came up and took work
        self.done_by = collections.Counter[int]()  # finished attempts per worker index

    def _connect(self) -> Any:
        return connect(self.address)

    def _start_workers(self, ray: Any) -> list[Any]:
        n = self.workers or max(1, sum(1 for node in ray.nodes() if node.get("Alive") and node["Resources"].get("CPU")))
        return [self._new_actor(ray) for _ in range(n)]

    def _new_actor(self, ray: Any) -> Any:
        actor = ray.remote(EvalWorker).options(num_cpus=self.num_cpus, scheduling_strategy="SPREAD",
                                               max_concurrency=self.concurrency + 2, max_restarts=0)  # fmt: skip
        return actor.remote(self.spec)

    async def run(self, items: Sequence[Item], emit: Emit, *, k: int, config: dict[str, Any]) -> None:
        ray = await asyncio.to_thread(self._connect)
        if not self.actors:  # started once, kept for later runs; they end with the driver (or `shutdown()`)
            self.actors = self._start_workers(ray)
        alive = set(range(len(self.actors))) - self.dead
        busy = collections.Counter[int]()
        queue = collections.deque((t.serialise()[0], t.task.task_id, a) for t, a in items)
        failures = collections.Counter[tuple[str, int]]()
        inflight: dict[asyncio.Future[Any], tuple[int, tuple[str, str, int]]] = {}
        starting: dict[asyncio.Future[Any], tuple[int, float]] = {}  # replacements not yet answering
        scheduling = True

        def lost(w: int) -> None:
            if w in self.dead:
                return
            alive.discard(w)
            self.dead.add(w)
            self.deaths += 1
            if self.deaths <= self.max_replacements:
                self.actors.append(self._new_actor(ray))
                ready = asyncio.wrap_future(self.actors[-1].where.remote().future())
                starting[ready] = (len(self.actors) - 1, time.monotonic() + self.replace_timeout)

        try:
            while inflight or (scheduling and queue):
                for w in sorted(alive, key=lambda i: busy[i]):
                    while scheduling and queue and busy[w] < self.concurrency:
                        item = queue.popleft()
                        ref = self.actors[w].run.remote(item[0], item[2], k, config)
                        inflight[asyncio.wrap_future(ref.future())] = (w, item)
                        busy[w] += 1
                if not inflight and not starting:
                    if queue and scheduling:
                        raise EvalError("every Ray worker died; finished attempts are saved, run again to resume")
                    break
                timeout = min((d for _, d in starting.values()), default=None)
                done, _ = await asyncio.wait([*inflight, *starting], return_when=asyncio.FIRST_COMPLETED,
                                             timeout=None if timeout is None else max(0.0, timeout - time.monotonic()))
                for fut in [f for f, (_, d) in starting.items() if f not in done and d <= time.monotonic()]:
                    w, _ = starting.pop(fut)  # never placed (no room anywhere): give it up, the others carry on
                    self.dead.add(w)
                    ray.kill(self.actors[w])
                for fut in done:
                    if fut in starting:
                        w, _ = starting.pop(fut)
                        if fut.exception() is None:
                            alive.add(w)
                            self.replaced += 1
                        else:
                            lost(w)
                        continue
                    w, item = inflight.pop(fut)
                    busy[w] -= 1
                    try:
                        result = fut.result()
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                            ray.exceptions.ObjectLostError):  # fmt: skip
                        lost(w)
                        queue.appendleft(item)  # its worker died: run it again elsewhere
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        failures[(item[1], item[2])] += 1
                        if failures[(item[1], item[2])] < self.max_item_failures:
                            queue.append(item)
                            continue
                        result = _crash_record(item, exc, k, config)
                    self.done_by[w] += 1
                    if not emit(AttemptRecord.from_dict(result)):
                        scheduling = False
        finally:
            for fut in [*inflight, *starting]:
                fut.cancel()

    def shutdown(self) -> None:
        ray = ray_module()
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - an actor already gone
                pass
        self.actors, self.dead = [], set()


def _crash_record(item: tuple[str, str, int], exc: BaseException, k: int, config: dict[str, Any]) -> dict[str, Any]:
    from agentkit.envs.spec import TaskRecord

    t = TaskRecord.from_json(item[0]).task
    rec = AttemptRecord(t.task_id, item[2], t.family, t.difficulty, passed=False, status="error", k=k,
                        config=dict(config), error=f"Ray worker failed: {exc}", error_type=type(exc).__name__,
                        infra=True, failures=[f"attempt crashed on its Ray worker: {type(exc).__name__}"])  # fmt: skip
    return rec.to_dict()
