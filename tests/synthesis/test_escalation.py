"""Escalation from the solved ones: the solver always solves jon-total, so the synthesizer (a scripted model) is asked
for a harder variant; round 1 (a booking) is still always solved, round 2 (a booking chained with the look-up) is
solved every second attempt, so it is kept in the band; book-cheapest, solved half the time, is left alone. Every
gate, every measurement and every sandbox is real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentkit.envs.spec import TaskRecord, write_jsonl
from agentkit.testing.oracle import lazy_script, oracle_script
from agentkit.testing.synthesis_script import escalation_script

pytestmark = pytest.mark.docker


async def test_always_solved_task_is_escalated_until_in_band(serve, gated_trip: list[TaskRecord],
                                                             tmp_path: Path) -> None:  # fmt: skip
    from agentkit.backends.remote import RemoteBackend
    from agentkit.envs.eval import default_agent_factory
    from agentkit.envs.packages import Package
    from agentkit.envs.packages.difficulty import measure
    from agentkit.envs.packages.escalation import EscalationConfig, escalate
    from agentkit.sandbox import SandboxPool
    from agentkit.testing.packages import trip_package

    out = tmp_path / "synth"
    trip_package().write(out / "packages" / "trip-planning")
    (out / "records").mkdir(parents=True)
    write_jsonl(out / "records" / "trip-planning.jsonl", gated_trip)
    known: list[TaskRecord] = list(gated_trip)
    first_requests: dict[str, int] = {}

    def solver(body: dict[str, Any]) -> Any:
        msgs = body["messages"]
        instruction = msgs[1]["content"]
        if len(msgs) == 2:
            first_requests[instruction] = first_requests.get(instruction, 0) + 1
        hard = "Ana Lima" in instruction or "new one included" in instruction
        if hard and first_requests[instruction] % 2 == 0:
            return lazy_script(body)
        return oracle_script(known)(body)

    async def measuring(tasks: list[TaskRecord], factory: Any, **kw: Any) -> Any:
        known.extend(tasks)
        return await measure(tasks, factory, **kw)

    synth = serve(escalation_script, enforce="deepseek-v4")
    solve = serve(solver)
    cfg = EscalationConfig(rounds=3, k=2, concurrency=1)
    async with SandboxPool(size=1) as pool, RemoteBackend("vllm", "solver", base_url=solve.base_url) as sb, \
            RemoteBackend("deepseek", "deepseek-v4-flash", base_url=synth.base_url, api_key="test") as model:
        steps = (await escalate(model, ["trip planning"], out, default_agent_factory(sb), config=cfg, pool=pool,
                                measure_fn=measuring))["trip planning"]  # fmt: skip
    assert [(s.task, s.round, s.variant, s.outcome, s.rate) for s in steps] == [
        ("jon-total", 1, "jon-total-h1", "still_solved", 1.0),
        ("jon-total", 2, "jon-total-h2", "kept", 0.5),
    ]
    records = [TaskRecord.from_json(line) for line in (out / "records" / "trip-planning.jsonl").read_text().splitlines()]
    assert len(records) == 3
    hard = records[-1]
    assert hard.meta["escalated_from"] == "jon-total" and hard.meta["pass_rate"] == 0.5
    assert [c.tool for c in hard.solution.calls] == ["search_flights", "book_flight", "list_bookings"]
    assert "jon-total-h2" in [t.id for t in Package.load(out / "packages" / "trip-planning").tasks]
    events = [json.loads(line) for line in (out / "logs" / "trip-planning.jsonl").read_text().splitlines()]
    assert [(e["task"], e["reason"]) for e in events if e["event"] == "escalate_skip"] == [
        ("book-cheapest", "not solved always")]
    rounds = [e for e in events if e["event"] == "escalate"]
    assert [r["outcome"] for r in rounds] == ["still_solved", "kept"] and "still solved always" in rounds[0]["reason"]
