"""Package tasks run like generated ones: an Episode calls into its sandbox session, `agentkit eval` scores the
oracle 100% and a lazy agent 0%, and trajectories show the results the gates recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.eval import default_agent_factory, evaluate, load_results
from agentkit.envs.runtime import Episode
from agentkit.envs.spec import TaskRecord, write_jsonl
from agentkit.envs.trajectories import render, to_training_line
from agentkit.testing.oracle import lazy_script, oracle_script

pytestmark = pytest.mark.docker


async def test_episode_tool_calls_run_in_the_sandbox_session(gated_trip: list[TaskRecord]) -> None:
    from agentkit.sandbox import Sandbox

    book = gated_trip[0]
    async with Sandbox() as sb:
        ep = Episode(book, sandbox=sb)
        bad = await ep.acall("book_flight", {"flight_id": "FL106", "passenger": "Ana Lima"})
        assert bad.is_error and "full" in bad.content
        wrong_type = await ep.acall("book_flight", '{"flight_id": 7, "passenger": "Ana Lima"}')
        assert wrong_type.is_error and "must be string" in wrong_type.content
        for call in book.solution.calls:
            res = await ep.acall(call.tool, call.arguments)
            assert not res.is_error, res.content
        verdict = await ep.ascore(book.solution.answer)
        assert verdict.passed, verdict.failures
        assert ep.diff()["created"]["bookings"] == [{"id": "BK2", "flight_id": "FL102", "passenger": "Ana Lima"}]
        assert not ep.score(book.solution.answer).passed  # the sync path refuses a program verifier
    async with Sandbox() as sb:  # a private copy per episode: nothing booked, wrong answer
        verdict = await Episode(book, sandbox=sb).ascore("It costs 149.5")
        assert not verdict.passed and "expected exactly one new booking" in verdict.failures[0]


def test_episode_without_a_sandbox_says_how(gated_trip: list[TaskRecord]) -> None:
    with pytest.raises(Exception, match="sandbox"):
        Episode(gated_trip[0])


async def test_eval_scores_oracle_100_and_lazy_0(serve, gated_trip: list[TaskRecord], tmp_path: Path) -> None:
    from agentkit.sandbox import SandboxPool

    tasks = gated_trip
    write_jsonl(tmp_path / "tasks.jsonl", tasks)
    srv = serve(oracle_script(tasks))
    async with SandboxPool(size=2) as pool, RemoteBackend("vllm", "oracle", base_url=srv.base_url) as be:
        summary = await evaluate(default_agent_factory(be), tasks, k=2, concurrency=2, out=tmp_path / "r.jsonl",
                                 sandbox_pool=pool)
        assert summary.errors == 0 and summary.pass1 == 1.0, [r.failures for r in load_results(tmp_path / "r.jsonl")]
        assert "pkg.trip-planning" in summary.by_family
        rec = load_results(tmp_path / "r.jsonl")[0]
        assert rec.tool_calls >= 2 and rec.diff["created"]
    srv = serve(lazy_script)
    async with SandboxPool(size=2) as pool, RemoteBackend("vllm", "lazy", base_url=srv.base_url) as be:
        lazy = await evaluate(default_agent_factory(be), tasks, k=1, concurrency=2, sandbox_pool=pool)
    assert lazy.pass1 == 0.0


def test_trajectories_use_the_recorded_results(gated_trip: list[TaskRecord]) -> None:
    msgs = render(gated_trip[0])
    assert msgs[1].content == gated_trip[0].task.instruction
    assert '"FL102"' in msgs[3].content and "book_flight" in msgs[4].tool_calls[0].name
    line = to_training_line(gated_trip[0])
    assert line["family"] == "pkg.trip-planning" and len(line["tools"]) == 3
