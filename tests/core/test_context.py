"""Context that fits: a long run whose prompt would overflow the window, against the scripted DeepSeek server in
thinking mode (V4 rule enforced); what the server received is checked, and the transcript keeps everything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, AssistantMessage, ToolMessage, tool
from agentkit.backends.providers import ModelRules
from agentkit.backends.remote import RemoteBackend
from agentkit.context import ContextPolicy
from agentkit.errors import ConfigurationError
from agentkit.messages import DEEPSEEK_V4
from agentkit.testing.scripted_server import Fail, Reply

WINDOW = 4000  # tokens, as the scripted server counts them (JSON characters / 4)
STEPS = 14
PAGE = 2000  # characters of each tool result: the run needs ~7,000 tokens without a policy


@tool
def fetch(page: int) -> str:
    """Fetch one page of a long document."""
    return f"page {page}: " + "lorem ipsum " * (PAGE // 12)


def prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(json.dumps(m)) for m in body["messages"]) // 4


def long_run(body: dict[str, Any]) -> Reply | Fail:
    """Like a real server, refuse a prompt over the window; else read one more page, then answer."""
    if prompt_tokens(body) > WINDOW:
        return Fail(400, f"This model's maximum context length is {WINDOW} tokens")
    # Pages read so far: the highest page named anywhere (a call, a result, a summary or a restart note).
    pages = [int(n) for n in re.findall(r'page(?:\\?")?:? (\d+)', json.dumps(body["messages"]))]
    done = max(pages) + 1 if pages else 0
    if done < STEPS:
        return Reply(reasoning=f"read page {done}", tool_calls=[("fetch", json.dumps({"page": done}))])
    return Reply(reasoning="all read", content=f"read {done} pages")


def backend(srv: Any, window: int | None = WINDOW) -> RemoteBackend:
    rules = {"deepseek-v4-flash": ModelRules(DEEPSEEK_V4, thinks_by_default=True, context_window=window)}
    return RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="k", model_rules=rules)


def test_without_a_policy_the_prompt_overflows(serve) -> None:
    srv = serve(long_run, enforce="deepseek-v4")
    result = Agent(backend(srv), [fetch], max_turns=STEPS + 2, context_policy=None).run_sync("read everything")
    assert result.status == "error" and "maximum context length" in (result.error or "")


def test_drop_is_on_by_default_from_the_provider_table_and_keeps_the_wire_valid(serve) -> None:
    srv = serve(long_run, enforce="deepseek-v4")  # a missing reasoning_content would be a 400
    agent = Agent(backend(srv), [fetch], max_turns=STEPS + 2)
    assert agent.context_policy == ContextPolicy(window=WINDOW)
    result = agent.run_sync("read everything")
    assert result.status == "completed" and result.output == f"read {STEPS} pages", result.error
    assert max(prompt_tokens(r) for r in srv.requests) <= WINDOW
    last = srv.requests[-1]["messages"]
    tools = [m for m in last if m["role"] == "tool"]
    assert len(tools) == STEPS  # every result is still there as a valid tool message...
    dropped = [m for m in tools if m["content"].startswith("[result dropped to fit the context window")]
    assert dropped and tools[-1]["content"].startswith(f"page {STEPS - 1}")  # ...old ones as a short note
    assert all(m.get("reasoning_content") for m in last if m["role"] == "assistant" and m.get("tool_calls"))
    kept = [m for m in result.messages if isinstance(m, ToolMessage)]  # the transcript keeps everything
    assert len(kept) == STEPS and all(m.content.startswith("page") for m in kept)
    sent_ids = [[m["tool_call_id"] for m in r["messages"] if m["role"] == "tool" and m["content"].startswith("[result")]
                for r in srv.requests]  # fmt: skip
    assert all(set(a) <= set(b) for a, b in zip(sent_ids, sent_ids[1:], strict=False))  # a dropped result stays dropped


@pytest.mark.parametrize("strategy, marker", [
    ("summary", "[Earlier steps, summarised to fit the context window:]"),
    ("restart", "[The conversation was reset to fit the context window."),
])  # fmt: skip
def test_summary_and_restart_keep_the_task_and_fit(serve, strategy: str, marker: str) -> None:
    srv = serve(long_run, enforce="deepseek-v4")
    policy = ContextPolicy(strategy=strategy)  # type: ignore[arg-type]
    result = Agent(backend(srv), [fetch], max_turns=STEPS + 2, context_policy=policy).run_sync("read everything")
    assert result.status == "completed" and result.output == f"read {STEPS} pages", result.error
    assert max(prompt_tokens(r) for r in srv.requests) <= WINDOW
    shrunk = [r["messages"] for r in srv.requests if any(marker in (m.get("content") or "") for m in r["messages"])]
    assert shrunk, "the policy never acted"
    for messages in shrunk:
        assert messages[0] == {"role": "user", "content": "read everything"}  # the task stays first
        calls = {c["id"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or ()}
        assert calls == {m["tool_call_id"] for m in messages if m["role"] == "tool"}  # whole turns only
    assert sum(isinstance(m, AssistantMessage) and bool(m.tool_calls) for m in result.messages) == STEPS


def test_auto_is_off_where_the_window_is_unknown_and_windows_are_in_the_table(serve) -> None:
    srv = serve(long_run)
    assert Agent(RemoteBackend("vllm", "some-model", base_url=srv.base_url)).context_policy is None
    v4 = RemoteBackend("deepseek", "deepseek-v4-pro", base_url=srv.base_url, api_key="k")
    assert v4.context_window and Agent(v4).context_policy == ContextPolicy(window=v4.context_window)
    assert RemoteBackend("deepseek", "deepseek-v3.2-exp", base_url=srv.base_url, api_key="k").context_window == 131_072
    with pytest.raises(ConfigurationError, match="window"):
        Agent(RemoteBackend("vllm", "some-model", base_url=srv.base_url), context_policy=ContextPolicy())
    with pytest.raises(ConfigurationError):
        ContextPolicy(strategy="forget")  # type: ignore[arg-type]


def test_context_example_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "examples" / "long_context.py")], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "largest prompt sent" in proc.stdout and "completed" in proc.stdout
