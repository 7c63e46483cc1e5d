"""Sharding without an engine: `--shard i/n` runs a deterministic n-th of a task set; `merge_results` joins the
shards' results files into one that summarizes exactly as an unsharded run of the whole set.

A task belongs to shard `1 + sha256(task_id) mod n`: it depends on the task's id alone, never on the file's order,
the machine or the Python hash seed, so n machines given the same task file and `--shard 1/n` .. `n/n` cover every
task once between them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.envs.results import RESULTS_VERSION, AttemptRecord, ResultsStore, same_file, write_results
from agentkit.envs.spec import TaskRecord
from agentkit.errors import ConfigurationError


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, task_id: str) -> bool:
        digest = hashlib.sha256(task_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_shard(text: str) -> ShardSpec:
    """'2/4' -> ShardSpec(2, 4); raises ValueError with a message that says what is expected."""
    i, sep, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        raise ValueError(f"--shard must look like I/N (e.g. 1/4), got {text!r}") from None
    if not sep or count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard I/N needs 1 <= I <= N, got {text!r}")
    return ShardSpec(index, count)


def shard_tasks(tasks: Sequence[TaskRecord], shard: ShardSpec | None) -> list[TaskRecord]:
    return list(tasks) if shard is None else [t for t in tasks if shard.holds(t.task.task_id)]


def merge_results(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> tuple[int, list[str]]:
    """Combine shard results into `out` (written atomically). Every input must hold results of one configuration.
    Returns (attempts written, notes on skipped lines). An attempt found in two inputs keeps the one that is an
    outcome (not an infrastructure error), else the later input's."""
    if not inputs:
        raise ConfigurationError("eval merge needs at least one results file")
    for p in inputs:
        if same_file(p, out):
            raise ConfigurationError(f"--out {out} is also an input; write the merged results to a new file")
        if not Path(p).is_file():
            raise ConfigurationError(f"{p} does not exist")
    config: dict[str, Any] | None = None
    merged: dict[tuple[str, int], AttemptRecord] = {}
    notes: list[str] = []
    for p in inputs:
        loaded = ResultsStore(p).read()
        notes += [f"{p}: {prob} (skipped)" for prob in loaded.problems]
        if config is None:
            config = loaded.config
        elif loaded.config != config:
            raise ConfigurationError(f"{p} holds results of another configuration ({loaded.config}, not {config}); "
                                     "only shards of one run can be merged")  # fmt: skip
        for r in loaded.records:
            prior = merged.get(r.key)
            if prior is None or prior.infra or not r.infra:
                merged[r.key] = r
    records = sorted(merged.values(), key=lambda r: r.key)
    header = {"kind": "header", "version": RESULTS_VERSION, "config": config or {},
              "merged_from": [Path(p).name for p in inputs]}  # fmt: skip
    write_results(out, header, records)
    return len(records), notes
