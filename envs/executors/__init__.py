"""Where attempts run. An executor takes the attempts still to run and hands each finished `AttemptRecord` to
`emit` (which stores it on the driver and says whether to keep scheduling); the store, resume, `--retry-errors` and
the summary are the same whichever executor ran the attempts.

- `LocalExecutor`: asyncio in this process (the default), `concurrency` attempts in flight.
- `shard`: not an executor but a deterministic split of a task set (`--shard i/n`) plus `merge` of the results.
- `RayExecutor` (`agentkit[ray]`): attempts on a Ray cluster, one worker per node with its own sandbox pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from agentkit.envs.results import AttemptRecord
from agentkit.envs.spec import TaskRecord

Item = tuple[TaskRecord, int]
Emit = Callable[[AttemptRecord], bool]


class Executor(Protocol):
    async def run(self, items: Sequence[Item], emit: Emit, *, k: int, config: dict[str, Any]) -> None:
        """Run every item, calling `emit` once per finished attempt; stop scheduling when `emit` returns False."""
        ...


from agentkit.envs.executors.local import LocalExecutor  # noqa: E402
from agentkit.envs.executors.shard import ShardSpec, merge_results, parse_shard, shard_tasks  # noqa: E402

__all__ = ["Emit", "Executor", "Item", "LocalExecutor", "ShardSpec", "merge_results", "parse_shard", "shard_tasks"]
