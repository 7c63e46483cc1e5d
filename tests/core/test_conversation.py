"""Conversations across user turns: the reasoning rules of DeepSeek V4 (the API) and V3.2 (weights behind vLLM)
hold in every request, checked by the scripted server as the real servers would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentkit import Agent, AssistantMessage, Conversation, UserMessage, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply, auto_script

ROOT = Path(__file__).resolve().parents[2]


@tool
def word_count(text: str) -> int:
    """Count words."""
    return len(text.split())


def script(body):
    """Each user turn: one tool call, then an answer."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    turn = sum(1 for m in messages if m["role"] == "user")
    if not any(m["role"] == "tool" for m in messages[last_user:]):
        return Reply(reasoning=f"turn {turn}: count first", tool_calls=[("word_count", '{"text": "a b c"}')])
    return Reply(reasoning=f"turn {turn}: answer", content=f"answer {turn}")


@pytest.mark.parametrize(
    ("enforce", "provider", "model"),
    [("deepseek-v4", "deepseek", "deepseek-v4-flash"), ("deepseek-v3.2", "vllm", "deepseek-ai/DeepSeek-V3.2")],
)
async def test_history_continues_a_conversation_under_each_reasoning_rule(serve, enforce, provider, model) -> None:
    srv = serve(script, enforce=enforce)
    agent = Agent(RemoteBackend(provider, model, base_url=srv.base_url, api_key="test"), [word_count], thinking=True)
    first = await agent.run("count a b c")
    second = await agent.run("and again", history=first.messages)
    third = await agent.run("once more", history=second.messages)
    assert [r.status for r in (first, second, third)] == ["completed"] * 3, third.error
    assert third.output == "answer 3"
    assert sum(isinstance(m, UserMessage) for m in third.messages) == 3
    assert all(m.reasoning_content for m in third.messages if isinstance(m, AssistantMessage))  # transcript keeps all
    last = srv.requests[-1]["messages"]
    sent = [bool(m.get("reasoning_content")) for m in last if m["role"] == "assistant"]
    if enforce == "deepseek-v4":
        assert sent == [True] * 5  # every turn used tools: all its reasoning travels, in all later requests
    else:
        assert sent == [False, False, False, False, True]  # only the current user turn's


async def test_conversation_object_keeps_the_transcript(serve) -> None:
    srv = serve(script, enforce="deepseek-v4")
    conv = Conversation(Agent(RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="t"),
                              [word_count], system_prompt="Be brief."))  # fmt: skip
    assert (await conv.send("one")).output == "answer 1"
    assert (await conv.send("two")).output == "answer 2"
    events = [e async for e in conv.stream("three")]
    assert events[-1].result.output == "answer 3" and len(conv.results) == 3
    assert sum(m.role == "system" for m in conv.messages) == 1
    conv.reset()
    assert conv.messages == []


def test_send_sync_and_a_tool_free_turn_under_v4(serve) -> None:
    replies = [Reply(reasoning="greet", content="hello"), Reply(reasoning="use it", tool_calls=[("word_count", '{"text": "x"}')]),
               Reply(reasoning="done", content="1 word")]  # fmt: skip
    srv = serve(replies, enforce="deepseek-v4")
    conv = Conversation(Agent(RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="t"), [word_count]))
    assert conv.send_sync("hi").output == "hello"
    assert conv.send_sync("count x").output == "1 word"
    conv.close()
    last = srv.requests[-1]["messages"]
    assert [bool(m.get("reasoning_content")) for m in last if m["role"] == "assistant"] == [False, True]


def test_conversation_example_runs(serve) -> None:
    srv = serve(auto_script, enforce="deepseek-v4")
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-example"}
    for example in ("conversation.py", "typed_output.py"):
        proc = subprocess.run([sys.executable, f"examples/{example}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "completed" in proc.stdout, proc.stdout
