"""The python tool inside the real agent loop: concurrent runs get separate sandboxes, released when each run ends
(completed or cancelled). The model is a scripted backend; everything else (loop, tools, containers) is real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from agentkit.backend import ChatDelta, ChatRequest, ToolCallFragment
from agentkit.loop import Agent
from agentkit.messages import ToolMessage
from agentkit.sandbox import SandboxLimits, SandboxPool, engine, python_tool


class ScriptedModel:
    """Calls the python tool once per entry of `cells`, then answers with the last tool result."""

    model = "scripted"

    def __init__(self, cells: list[str]) -> None:
        self.cells = cells

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        results = [m for m in request.messages if isinstance(m, ToolMessage)]
        if len(results) < len(self.cells):
            code = self.cells[len(results)]
            args = json.dumps({"code": code})
            yield ChatDelta(
                tool_calls=[ToolCallFragment(index=0, id=f"c{len(results)}", name="python", arguments=args)]
            )
            yield ChatDelta(finish_reason="tool_calls")
        else:
            yield ChatDelta(content=results[-1].content if results else "", finish_reason="stop")


def sandbox_count() -> int:
    me = engine.owner_id()
    return sum(1 for c in engine.list_sandboxes() if c["owner"] == me)


async def test_concurrent_agent_runs_each_get_their_own_sandbox(limits: SandboxLimits) -> None:
    async with SandboxPool(size=2, limits=limits) as pool:
        tool = python_tool(pool)
        agents = [
            Agent(ScriptedModel([f"x = {n}", "import os\nprint(x * 2, os.getpid() > 0)"]), [tool])
            for n in (21, 50)
        ]
        results = await asyncio.gather(*(a.run("compute") for a in agents))
        assert [r.status for r in results] == ["completed", "completed"]
        assert [r.output for r in results] == ["42 True", "100 True"]
        assert [r.tool_calls for r in results] == [2, 2]
        assert pool.stats["warm_acquires"] == 2
        await pool.wait_ready()
        assert sandbox_count() == 2  # only the pool's fresh warm ones: the runs' sandboxes were destroyed


async def test_a_cancelled_agent_run_leaves_no_container(limits: SandboxLimits) -> None:
    async with SandboxPool(size=0, limits=limits) as pool:
        agent = Agent(ScriptedModel(["import time\ntime.sleep(60)"]), [python_tool(pool)])
        task = asyncio.ensure_future(agent.run("sleep"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if sandbox_count():
                break
        assert sandbox_count() == 1
        await asyncio.sleep(0.3)  # the execution is in flight
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        assert isinstance(outcome, asyncio.CancelledError) or getattr(outcome, "status", None) == "cancelled"
    assert sandbox_count() == 0
