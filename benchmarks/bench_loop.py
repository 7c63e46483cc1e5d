"""Framework overhead of the agent loop: agentkit vs pydantic-ai vs openai-agents on the same local server.

One episode = 10 tool-use steps then an answer (11 model requests, 10 tool calls). The server (a real HTTP server on
127.0.0.1, answering instantly) measures the time it spends producing each response; framework time per step is the
wall time minus that server time, divided by the model requests. All three frameworks talk to the same server, in the
same process, in this run. agentkit is measured streaming (its default) and non-streaming (what the peers' `run` uses).

A second table measures an MCP tool call (a stdio server built with the official SDK) against a local function
tool in the same runs: each episode alternates the two, and each call's time is the loop's own measure of it.

    python benchmarks/bench_loop.py            # 30 episodes per framework
    python benchmarks/bench_loop.py --quick    # 8 episodes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from agentkit import Agent, ToolResult, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply, ScriptedServer

STEPS = 10
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")


def episode_script(body: dict[str, Any]) -> Reply:
    """Call `step` until 10 results came back since the last user message, then answer."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    if done < STEPS:
        return Reply(tool_calls=[("step", json.dumps({"n": done}))])
    return Reply(content=f"finished {done} steps")


def step_impl(n: int) -> int:
    return n + 1


@tool
def step(n: int) -> int:
    """Advance one step.

    Args:
        n: the current step number.
    """
    return step_impl(n)


async def run_agentkit(base_url: str, stream: bool) -> Callable[[], Awaitable[str]]:
    backend = RemoteBackend("vllm", "bench", base_url=base_url, stream=stream)
    agent = Agent(backend, [step], max_turns=STEPS + 2)

    async def once() -> str:
        result = await agent.run("run the episode")
        assert result.status == "completed" and result.tool_calls == STEPS, result.error
        return result.output or ""

    return once


async def run_pydantic_ai(base_url: str) -> Callable[[], Awaitable[str]]:
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("bench", provider=OpenAIProvider(base_url=base_url, api_key="x"))
    agent = PAgent(model)

    @agent.tool_plain
    def step(n: int) -> int:
        """Advance one step."""
        return step_impl(n)

    async def once() -> str:
        result = await agent.run("run the episode")
        return str(result.output)

    return once


async def run_openai_agents(base_url: str) -> Callable[[], Awaitable[str]]:
    from agents import Agent as OAgent
    from agents import OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)

    @function_tool
    def step(n: int) -> int:
        """Advance one step."""
        return step_impl(n)

    model = OpenAIChatCompletionsModel(model="bench", openai_client=AsyncOpenAI(base_url=base_url, api_key="x"))
    agent = OAgent(name="bench", instructions="run", model=model, tools=[step])

    async def once() -> str:
        result = await Runner.run(agent, "run the episode", max_turns=STEPS + 2)
        return str(result.final_output)

    return once


async def measure(name: str, make: Callable[[str], Awaitable[Callable[[], Awaitable[str]]]], episodes: int) -> dict[str, Any]:
    with ScriptedServer(episode_script) as srv:
        once = await make(srv.base_url)
        out = await once()  # warm-up: imports, connection pool
        assert f"finished {STEPS} steps" in out, f"{name}: unexpected output {out!r}"
        srv.server_time, n0 = 0.0, len(srv.requests)
        per_episode = []
        t0 = time.perf_counter()
        for _ in range(episodes):
            e0, s0 = time.perf_counter(), srv.server_time
            await once()
            per_episode.append((time.perf_counter() - e0) - (srv.server_time - s0))
        wall = time.perf_counter() - t0
        requests = len(srv.requests) - n0
        framework = wall - srv.server_time
    steps_per_episode = requests / episodes
    return {
        "name": name,
        "episodes": episodes,
        "requests": requests,
        "ms_per_step": framework / requests * 1000,
        "p50_episode_ms": statistics.median(per_episode) * 1000,
        "server_ms_per_step": srv.server_time / requests * 1000,
        "steps_per_s": requests / wall,
        "steps_per_episode": steps_per_episode,
    }


def mixed_script(body: dict[str, Any]) -> Reply:
    """Alternate the local `step` and the MCP `mcp_step` for 10 calls, then answer."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    if done < STEPS:
        return Reply(tool_calls=[("step" if done % 2 == 0 else "mcp_step", json.dumps({"n": done}))])
    return Reply(content=f"finished {done} steps")


async def measure_mcp(episodes: int) -> dict[str, Any]:
    """Per-call time of a local function tool and of an MCP tool (stdio), in the same runs."""
    try:
        from agentkit.mcp import MCPServerStdio
    except ImportError as exc:
        return {"missing": f"not installed ({exc.name}); pip install -e '.[mcp]'"}
    server = MCPServerStdio(sys.executable, [os.path.join(os.path.dirname(__file__), "mcp_step_server.py")])
    times: dict[str, list[float]] = {"step": [], "mcp_step": []}
    with ScriptedServer(mixed_script) as srv:
        agent = Agent(RemoteBackend("vllm", "bench", base_url=srv.base_url), [step, server], max_turns=STEPS + 2)
        async with server:  # one server process for all episodes, as an application would keep it
            for i in range(episodes + 1):
                async for event in agent.stream("run the episode"):
                    if isinstance(event, ToolResult) and i > 0:  # episode 0 warms up
                        assert not event.is_error, event.content
                        times[event.call.name].append(event.duration)
    local = statistics.mean(times["step"]) * 1000
    remote = statistics.mean(times["mcp_step"]) * 1000
    return {"local_ms": local, "mcp_ms": remote, "overhead_ms": remote - local, "calls": len(times["mcp_step"]),
            "mcp_p50_ms": statistics.median(times["mcp_step"]) * 1000}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--episodes", type=int, default=None)
    args = parser.parse_args()
    episodes = args.episodes or (8 if args.quick else 30)
    runs: list[tuple[str, Any]] = [
        ("agentkit (stream)", lambda url: run_agentkit(url, True)),
        ("agentkit (no stream)", lambda url: run_agentkit(url, False)),
        ("pydantic-ai", run_pydantic_ai),
        ("openai-agents", run_openai_agents),
    ]
    rows = []
    for name, make in runs:
        try:
            rows.append(await measure(name, make, episodes))
        except ImportError as exc:
            rows.append({"name": name, "missing": f"not installed ({exc.name}); pip install -e '.[bench]'"})
    base = next(r for r in rows if r["name"] == "agentkit (stream)")
    table = Table(title=f"Agent loop overhead: {STEPS}-step tool episode x {episodes}, same local server")
    for col in ("framework", "ms/step (framework)", "vs agentkit", "steps/s", "server ms/step", "p50 episode ms"):
        table.add_column(col, justify="right" if col != "framework" else "left")
    for r in rows:
        if "missing" in r:
            table.add_row(r["name"], r["missing"], "", "", "", "")
            continue
        table.add_row(r["name"], f"{r['ms_per_step']:.3f}", f"{r['ms_per_step'] / base['ms_per_step']:.2f}x",
                      f"{r['steps_per_s']:.0f}", f"{r['server_ms_per_step']:.3f}", f"{r['p50_episode_ms']:.1f}")  # fmt: skip
    Console().print(table)
    mcp_row = await measure_mcp(episodes)
    mtable = Table(title=f"MCP tool call vs local function tool, same runs ({episodes} episodes, stdio server)")
    for col in ("tool", "ms/call (mean)", "vs local", "calls"):
        mtable.add_column(col, justify="right" if col != "tool" else "left")
    if "missing" in mcp_row:
        mtable.add_row("MCP (stdio)", mcp_row["missing"], "", "")
    else:
        n = mcp_row["calls"]
        mtable.add_row("local @tool", f"{mcp_row['local_ms']:.3f}", "1.00x", str(n))
        mtable.add_row("MCP (stdio)", f"{mcp_row['mcp_ms']:.3f}", f"{mcp_row['mcp_ms'] / mcp_row['local_ms']:.1f}x", str(n))
        mtable.add_row("MCP overhead per call", f"{mcp_row['overhead_ms']:.3f}", "", "")
    Console().print(mtable)

    def ms(name: str) -> float | None:
        r = next((r for r in rows if r["name"] == name and "missing" not in r), None)
        return round(r["ms_per_step"], 4) if r else None

    print(
        json.dumps(
            {
                "agentkit_ms_per_step": ms("agentkit (stream)"),
                "agentkit_nonstream_ms_per_step": ms("agentkit (no stream)"),
                "pydantic_ai_ms_per_step": ms("pydantic-ai"),
                "openai_agents_ms_per_step": ms("openai-agents"),
                "steps_per_s": round(base["steps_per_s"], 1),
                "episodes": episodes,
                "steps_per_episode": STEPS + 1,
                "mcp_overhead_ms_per_call": round(mcp_row["overhead_ms"], 4) if "overhead_ms" in mcp_row else None,
                "local_tool_ms_per_call": round(mcp_row["local_ms"], 4) if "local_ms" in mcp_row else None,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
