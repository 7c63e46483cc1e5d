"""Difficulty by measurement: k attempts of a solver through the eval harness; tasks whose pass rate is in the band
are kept with the rate recorded as their difficulty (here a scripted solver that always solves one task and solves
the other every second attempt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.eval import default_agent_factory
from agentkit.envs.packages.difficulty import Band, difficulty_of, measure
from agentkit.envs.spec import TaskRecord
from agentkit.testing.oracle import lazy_script, oracle_script


def test_band_parsing_and_difficulty_scale() -> None:
    assert Band.parse("0,1").holds(0.5) and not Band.parse("0,1").holds(1.0) and not Band.parse("0,1").holds(0.0)
    assert Band.parse("[0.25,1]").holds(1.0) and Band.parse("[0.25,1]").holds(0.25)
    with pytest.raises(ValueError):
        Band.parse("0.9,0.1")
    assert [difficulty_of(r) for r in (1.0, 0.5, 0.01)] == [1, 3, 5]


@pytest.mark.docker
async def test_measured_pass_rate_decides_and_is_recorded(serve, gated_trip: list[TaskRecord], tmp_path: Path) -> None:
    from agentkit.sandbox import SandboxPool

    tasks = [TaskRecord.from_json(t.to_json()) for t in gated_trip]
    oracle = oracle_script(tasks)
    attempts = {"n": 0}

    def sometimes(body: dict[str, Any]) -> Any:
        msgs = body["messages"]
        if "Jon Berg" in msgs[1]["content"]:
            return oracle(body)
        if len(msgs) == 2:
            attempts["n"] += 1
        return oracle(body) if attempts["n"] % 2 else lazy_script(body)

    srv = serve(sometimes)
    async with SandboxPool(size=1) as pool, RemoteBackend("vllm", "solver", base_url=srv.base_url) as be:
        kept, rates = await measure(tasks, default_agent_factory(be), k=2, concurrency=1, sandbox_pool=pool,
                                    solver="scripted", out=tmp_path / "a.jsonl")
    assert rates == {tasks[0].task.task_id: 0.5, tasks[1].task.task_id: 1.0}
    [book] = kept
    assert book.meta["pass_rate"] == 0.5 and book.meta["solver"] == "scripted" and book.task.difficulty == 3
