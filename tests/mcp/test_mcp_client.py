"""The MCP client against real servers built with the official SDK (stdio and streamable HTTP), driven by a model on
the scripted DeepSeek server in thinking mode."""

from __future__ import annotations

import json
import os
import sys

from agentkit import Agent, ToolMessage, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.mcp import MCPServerHTTP, MCPServerStdio
from agentkit.testing.scripted_server import Reply, auto_script
from tests.mcp.conftest import FIXTURE, RAW


def backend(srv) -> RemoteBackend:
    return RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="test")


@tool
def double(n: int) -> int:
    """Double a number."""
    return 2 * n


def tool_results(messages) -> dict[str, ToolMessage]:
    return {m.name: m for m in messages if isinstance(m, ToolMessage)}


async def test_stdio_tools_next_to_a_function_tool_listed_once_per_run(serve, devnull) -> None:
    server = MCPServerStdio(sys.executable, [FIXTURE], errlog=devnull)
    srv = serve([
        Reply(reasoning="add, then double", tool_calls=[("add", '{"a": 2, "b": 3}')]),
        Reply(reasoning="now double", tool_calls=[("double", '{"n": 5}'), ("weather", '{"city": "Oslo"}'), ("picture", "{}")]),
        Reply(reasoning="done", content="10"),
    ], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), [server, double]).run("compute")
    assert result.status == "completed" and result.output == "10", result.error
    got = tool_results(result.messages)
    assert got["add"].content == "5" and got["double"].content == "10"
    assert json.loads(got["weather"].content) == {"city": "Oslo", "temp_c": 21}
    assert got["picture"].content.startswith("[image image/png") and not got["picture"].is_error
    names = {t["function"]["name"] for t in srv.requests[0]["tools"]}
    assert {"add", "echo", "weather", "double"} <= names
    assert server.list_calls == 1 and server.starts == 1 and not server.running  # started and stopped with the run


async def test_errors_timeouts_a_crash_and_a_malformed_answer_end_the_call_not_the_run(serve, devnull) -> None:
    fixture = MCPServerStdio(sys.executable, [FIXTURE], errlog=devnull, timeout=1.5)
    raw = MCPServerStdio(sys.executable, [RAW], errlog=devnull, name="raw", tool_prefix="raw_")
    srv = serve([
        Reply(reasoning="try", tool_calls=[("fail", '{"reason": "x"}'), ("slow", '{"seconds": 30}'), ("raw_bad", "{}"), ("raw_good", "{}")]),
        Reply(reasoning="crash it", tool_calls=[("crash", "{}")]),
        Reply(reasoning="after", tool_calls=[("add", '{"a": 1, "b": 1}')]),
        Reply(reasoning="done", content="survived"),
    ], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), [fixture, raw]).run("break things")
    assert result.status == "completed" and result.output == "survived", result.error
    got = tool_results(result.messages)
    assert got["fail"].is_error and "fail" in got["fail"].content
    assert got["slow"].is_error and "timed out" in got["slow"].content
    assert got["raw_bad"].is_error and "validation error" in got["raw_bad"].content.lower()
    assert got["raw_good"].content == "fine" and not got["raw_good"].is_error
    assert got["crash"].is_error and "python" in got["crash"].content
    assert got["add"].is_error and "not running" in got["add"].content
    assert result.tool_errors == 5


async def test_list_changed_relists_before_the_next_request(serve, devnull) -> None:
    server = MCPServerStdio(sys.executable, [FIXTURE], errlog=devnull)
    srv = serve([
        Reply(reasoning="grow", tool_calls=[("grow", "{}")]),
        Reply(reasoning="use the new one", tool_calls=[("extra", "{}")]),
        Reply(reasoning="done", content="ok"),
    ], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), [server]).run("grow")
    assert result.status == "completed", result.error
    assert tool_results(result.messages)["extra"].content == "extra here"
    assert server.list_calls == 2
    assert "extra" not in {t["function"]["name"] for t in srv.requests[0]["tools"]}
    assert "extra" in {t["function"]["name"] for t in srv.requests[1]["tools"]}


async def test_http_server_shared_by_async_with_across_runs(serve, http_fixture_url) -> None:
    server = MCPServerHTTP(http_fixture_url, headers={"Authorization": "Bearer sk-secret-token-123"})
    assert "sk-secret" not in repr(server)

    def script(body):
        done = [m for m in body["messages"] if m["role"] == "tool"]
        if not done:
            return Reply(reasoning="echo", tool_calls=[("echo", '{"text": "hi"}')])
        return Reply(reasoning="done", content=done[-1]["content"])

    srv = serve(script, enforce="deepseek-v4")
    agent = Agent(backend(srv), [server])
    async with server:
        first = await agent.run("one")
        second = await agent.run("two")
        assert server.running
    assert first.output == second.output == "hi", (first.error, second.error)
    assert server.starts == 1 and server.list_calls == 2 and not server.running


async def test_a_server_that_cannot_start_ends_the_run_with_a_clear_error(serve) -> None:
    srv = serve([Reply(content="never asked")])
    server = MCPServerStdio("/nonexistent/mcp-server", name="ghost", connect_timeout=5)
    result = await Agent(backend(srv), [server]).run("x")
    assert result.status == "error" and result.error_type == "ToolSourceError"
    assert "ghost" in (result.error or "") and not srv.requests


def test_example_runs(serve) -> None:
    import subprocess

    srv = serve(auto_script, enforce="deepseek-v4")
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-example"}
    proc = subprocess.run([sys.executable, "examples/mcp_client.py"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "answer: Done. The tool said:" in proc.stdout and "completed" in proc.stdout  # it ran mcp_weather_server.py
    assert {t["function"]["name"] for t in srv.requests[0]["tools"]} == {"forecast", "packing_list"}
