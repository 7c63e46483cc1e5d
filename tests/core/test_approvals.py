"""Approvals: a callback (sync or async) decides, or the run ends with its pending calls and resumes later; a denied
call becomes a result the model reads. Against the scripted DeepSeek server in thinking mode (V4 rule enforced)."""

from __future__ import annotations

import os
import subprocess
import sys

from agentkit import Agent, AssistantMessage, ToolMessage, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply, auto_script

deleted: list[str] = []


@tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    deleted.append(path)
    return f"deleted {path}"


@tool
def list_files() -> list[str]:
    """List the files."""
    return ["a.txt", "b.txt"]


def replies() -> list[Reply]:
    return [
        Reply(reasoning="list and delete", tool_calls=[("list_files", "{}"), ("delete_file", '{"path": "a.txt"}'),
                                                       ("delete_file", '{"path": "b.txt"}')]),
        Reply(reasoning="report", content="done"),
    ]  # fmt: skip


def backend(srv) -> RemoteBackend:
    return RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="t")


async def test_async_callback_approves_one_and_denies_the_other(serve) -> None:
    deleted.clear()

    async def approve(call, t):
        return True if '"a.txt"' in call.arguments else "b.txt is precious"

    srv = serve(replies(), enforce="deepseek-v4")
    result = await Agent(backend(srv), [list_files, delete_file], approve=approve).run("clean up")
    assert result.status == "completed" and deleted == ["a.txt"]
    results = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert results[1].content == "deleted a.txt" and results[2].is_error
    assert "denied by the user: b.txt is precious" in results[2].content
    assert srv.requests[1]["messages"][-1]["content"] == results[2].content  # the model reads the denial


async def test_without_a_callback_the_run_pauses_and_resumes_from_its_messages(serve) -> None:
    deleted.clear()
    srv = serve(replies(), enforce="deepseek-v4")
    agent = Agent(backend(srv), [list_files, delete_file])
    paused = await agent.run("clean up")
    assert paused.status == "pending_approval" and [c.name for c in paused.pending] == ["delete_file"] * 2
    assert isinstance(paused.messages[-1], AssistantMessage) and deleted == []  # nothing of that response ran
    decisions = {paused.pending[0].id: True, paused.pending[1].id: False}
    resumed = await agent.run(history=paused.messages, approvals=decisions)
    assert resumed.status == "completed" and resumed.output == "done" and deleted == ["a.txt"]
    assert len(srv.requests) == 2  # the resume ran the calls, then asked the model once


def test_sync_callback_and_the_example(serve) -> None:
    deleted.clear()
    srv = serve(replies(), enforce="deepseek-v4")
    result = Agent(backend(srv), [list_files, delete_file], approve=lambda call, t: False).run_sync("clean up")
    assert result.status == "completed" and deleted == [] and result.tool_errors == 2
    srv = serve(auto_script, enforce="deepseek-v4")
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-example"}
    proc = subprocess.run([sys.executable, "examples/approvals.py"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pending_approval" in proc.stdout and "completed" in proc.stdout
