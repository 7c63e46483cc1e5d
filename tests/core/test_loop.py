"""Loop behaviour that does not depend on the wire: turns, deadlines, cancellation, per-run resources."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentkit import (
    Agent,
    AssistantTurn,
    Final,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolResult,
    TurnStart,
    current_run,
    tool,
)
from agentkit.backends.remote import RemoteBackend
from agentkit.errors import ConfigurationError
from agentkit.testing.scripted_server import Fail, Reply


def backend(srv) -> RemoteBackend:
    return RemoteBackend("vllm", "m", base_url=srv.base_url, backoff_base=0.01)


def always_call(name: str, args: str):
    return lambda body: Reply(reasoning="again", tool_calls=[(name, args)])


@tool
def noop() -> str:
    """Does nothing."""
    return "ok"


async def test_event_order(serve) -> None:
    srv = serve([Reply(reasoning="think", tool_calls=[("noop", "{}")]), Reply(content="end")])
    async with backend(srv) as be:
        events = [e async for e in Agent(be, [noop]).stream("x")]
    kinds = [type(e) for e in events]
    assert kinds[0] is TurnStart and kinds[-1] is Final
    first_turn = kinds[: kinds.index(AssistantTurn) + 1]
    assert ReasoningDelta in first_turn and ToolCallDelta in first_turn
    assert first_turn.index(ReasoningDelta) < first_turn.index(ToolCallDelta)
    assert kinds[kinds.index(AssistantTurn) + 1] is ToolResult
    assert TextDelta in kinds[kinds.index(ToolResult) :]
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "think"


async def test_max_turns_stops_with_transcript(serve) -> None:
    srv = serve(always_call("noop", "{}"))
    async with backend(srv) as be:
        result = await Agent(be, [noop], max_turns=3).run("loop forever")
    assert result.status == "max_turns" and result.turns == 3 and result.tool_calls == 3
    assert len(srv.requests) == 3
    assert result.messages[-1].role == "tool"  # the last calls were answered: the transcript can be resumed


async def test_deadline_stops_a_slow_tool(serve) -> None:
    @tool(timeout=None)
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(10)
        return "late"

    srv = serve(always_call("slow", "{}"))
    async with backend(srv) as be:
        t0 = time.monotonic()
        result = await Agent(be, [slow], deadline=0.5).run("x")
    assert result.status == "deadline" and time.monotonic() - t0 < 2
    assert result.messages[-1].content == "Tool call was cancelled before it finished."


async def test_deadline_stops_a_slow_model(serve) -> None:
    srv = serve([Reply(content="late")], latency=3)
    async with backend(srv) as be:
        t0 = time.monotonic()
        result = await Agent(be, deadline=0.3).run("x")
    assert result.status == "deadline" and time.monotonic() - t0 < 1.5


async def test_agent_tool_timeout_caps_every_tool(serve) -> None:
    @tool(timeout=None)
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(10)
        return "late"

    srv = serve([Reply(tool_calls=[("slow", "{}")]), Reply(content="gave up")])
    async with backend(srv) as be:
        result = await Agent(be, [slow], tool_timeout=0.2).run("x")
    assert result.output == "gave up" and result.messages[2].is_error
    assert "timed out after 0.2 s" in result.messages[2].content


async def test_cancellation_stops_tools_and_runs_cleanups(serve) -> None:
    state = {"started": 0, "cancelled": 0, "cleaned": 0}

    @tool(timeout=None)
    async def hold() -> str:
        """Holds a resource."""
        ctx = current_run()
        if "res" not in ctx.resources:
            ctx.resources["res"] = object()

            async def release() -> None:
                state["cleaned"] += 1

            ctx.add_cleanup(release)
        state["started"] += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        return "never"

    srv = serve([Reply(tool_calls=[("hold", "{}"), ("hold", "{}")])])
    async with backend(srv) as be:
        task = asyncio.create_task(Agent(be, [hold]).run("x"))
        while state["started"] < 2:  # noqa: ASYNC110 - polling a plain dict set by the tools
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert state == {"started": 2, "cancelled": 2, "cleaned": 1}


async def test_closing_the_stream_early_stops_everything(serve) -> None:
    cleaned = []

    @tool(timeout=None)
    async def hold() -> str:
        """Hold."""
        current_run().add_cleanup(lambda: asyncio.sleep(0, cleaned.append(1)))
        await asyncio.sleep(30)
        return "x"

    srv = serve([Reply(tool_calls=[("hold", "{}")])])
    async with backend(srv) as be:
        stream = Agent(be, [hold]).stream("x")
        async for event in stream:
            if isinstance(event, AssistantTurn):
                break
        await stream.aclose()
    assert cleaned == []  # the tool never started: closing before the tools ran must not run them
    stream = None


async def test_each_run_gets_its_own_context(serve) -> None:
    seen: list[str] = []

    @tool
    async def who() -> str:
        """Which run am I in."""
        seen.append(current_run().run_id)
        return current_run().run_id

    srv = serve(lambda body: Reply(content="done") if body["messages"][-1]["role"] == "tool" else Reply(tool_calls=[("who", "{}"), ("who", "{}")]))
    async with backend(srv) as be:
        agent = Agent(be, [who])
        await asyncio.gather(agent.run("a"), agent.run("b"))
    assert len(seen) == 4 and len(set(seen)) == 2  # two calls per run share a context; runs do not


def test_run_sync(serve) -> None:
    srv = serve([Reply(content="sync ok")])
    result = Agent(backend(srv)).run_sync("x")
    assert result.status == "completed" and result.output == "sync ok" and result.wall_time > 0


async def test_backend_error_keeps_the_transcript(serve) -> None:
    srv = serve([Reply(tool_calls=[("noop", "{}")]), Fail(401, "bad key")])
    async with backend(srv) as be:
        result = await Agent(be, [noop], system_prompt="be brief").run("x")
    assert result.status == "error" and result.error_type == "AuthenticationError"
    assert [m.role for m in result.messages] == ["system", "user", "assistant", "tool"]


def test_bad_configuration() -> None:
    with pytest.raises(ConfigurationError):
        Agent(RemoteBackend("vllm", "m"), max_turns=0)
    with pytest.raises(ConfigurationError, match="needs a task"):
        Agent(RemoteBackend("vllm", "m")).stream([])
