"""The default executor: asyncio in this process, `concurrency` attempts in flight, one shared sandbox pool."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from agentkit.envs.attempt import AgentFactory, needs_python, run_attempt
from agentkit.envs.executors import Emit, Item
from agentkit.envs.results import EvalError


class LocalExecutor:
    def __init__(self, factory: AgentFactory, *, concurrency: int = 8, sandbox_pool: Any = None) -> None:
        if concurrency < 1:
            raise EvalError("concurrency must be at least 1")
        self.factory = factory
        self.concurrency = concurrency
        self.sandbox_pool = sandbox_pool

    async def run(self, items: Sequence[Item], emit: Emit, *, k: int, config: dict[str, Any]) -> None:
        pool, own_pool = self.sandbox_pool, None
        if pool is None and any(needs_python(t) for t, _ in items):
            pool = own_pool = await open_sandbox_pool(self.concurrency)
        queue: asyncio.Queue[Item] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        stop = asyncio.Event()

        async def worker() -> None:
            while not queue.empty() and not stop.is_set():
                task, attempt = queue.get_nowait()
                rec = await run_attempt(task, attempt, self.factory, pool, k=k, config=config)
                if not emit(rec):
                    stop.set()

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self.concurrency, max(len(items), 1))):
                    tg.create_task(worker())
        finally:
            if own_pool is not None:
                await own_pool.close()


async def open_sandbox_pool(concurrency: int) -> Any:
    try:
        from agentkit.sandbox import SandboxPool
    except ImportError as exc:  # pragma: no cover - the sandbox ships with agentkit
        raise EvalError(f"tasks need the Python sandbox, which cannot be imported: {exc}") from exc
    return SandboxPool(size=min(concurrency, 4))
