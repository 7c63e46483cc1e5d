"""LocalDSABackend under the real agent loop: a memorised tiny model calls a tool and answers; a random one runs the
same plumbing; usage is counted in tokens, cost is zero."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import (
    ADD_ANSWER,
    ADD_FINAL_REASONING,
    ADD_QUESTION,
    ADD_REASONING,
    ADD_TOOL,
    HELLO_ANSWER,
    HELLO_QUESTION,
    SYSTEM,
    add,
)

from agentkit import Agent
from agentkit.backend import ChatRequest
from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.backend import LocalDSABackend
from agentkit.backends.local.errors import CheckpointError
from agentkit.errors import BadRequestError, ConfigurationError
from agentkit.events import ReasoningDelta, TextDelta, ToolCallDelta, ToolResult
from agentkit.messages import AssistantMessage, SystemMessage, UserMessage


async def test_the_agent_loop_runs_a_tool_call_end_to_end(memorised_checkpoint: Path) -> None:
    async with LocalDSABackend(memorised_checkpoint, max_tokens=120) as backend:
        agent = Agent(backend, [add], system_prompt=SYSTEM, thinking=True)
        events = [e async for e in agent.stream(ADD_QUESTION)]
    result = events[-1].result  # type: ignore[attr-defined]
    assert result.status == "completed", result.error
    assert result.output == ADD_ANSWER
    assistant = [m for m in result.messages if isinstance(m, AssistantMessage)]
    assert assistant[0].reasoning_content == ADD_REASONING
    assert assistant[0].tool_calls[0].name == "add" and assistant[0].tool_calls[0].parsed_arguments() == {
        "a": 17,
        "b": 25,
    }
    assert assistant[1].reasoning_content == ADD_FINAL_REASONING
    tool_results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.content for r in tool_results] == ["42"] and not tool_results[0].is_error
    assert sum(isinstance(e, ReasoningDelta) for e in events) > 4  # streamed token by token
    assert sum(isinstance(e, TextDelta) for e in events) > 2
    assert any(isinstance(e, ToolCallDelta) and e.name == "add" for e in events)
    assert result.usage.requests == 2 and result.cost == 0.0
    assert 0 < result.usage.reasoning_tokens < result.usage.completion_tokens


async def test_usage_counts_the_real_prompt_and_completion_tokens(memorised_checkpoint: Path) -> None:
    async with LocalDSABackend(memorised_checkpoint) as backend:
        messages = [SystemMessage(content=SYSTEM), UserMessage(content=HELLO_QUESTION)]
        prompt = backend.tokenizer.encode_prompt(cf.render(messages, [ADD_TOOL], thinking=False))
        deltas = [
            d async for d in backend.stream(ChatRequest(messages=messages, tools=[ADD_TOOL], thinking=False))
        ]
    text = "".join(d.content or "" for d in deltas)
    assert text == HELLO_ANSWER
    usage = deltas[-1].usage
    assert usage is not None and deltas[-1].finish_reason == "stop"
    assert usage.prompt_tokens == len(prompt) == usage.cache_miss_tokens
    answer_tokens = len(backend.tokenizer.encode(HELLO_ANSWER))
    assert usage.completion_tokens == answer_tokens + 1  # + the end-of-sentence token
    assert usage.reasoning_tokens == 0


async def test_dense_attention_on_request_and_max_tokens(memorised_checkpoint: Path) -> None:
    async with LocalDSABackend(memorised_checkpoint) as backend:
        messages = [SystemMessage(content=SYSTEM), UserMessage(content=HELLO_QUESTION)]
        request = ChatRequest(messages=messages, tools=[ADD_TOOL], max_tokens=3, extra={"attention": "dense"})
        deltas = [d async for d in backend.stream(request)]
    assert deltas[-1].finish_reason == "length" and deltas[-1].usage.completion_tokens == 3  # type: ignore[union-attr]


async def test_a_random_model_drives_the_same_loop_concurrently(random_checkpoint: Path) -> None:
    async with LocalDSABackend(random_checkpoint, max_tokens=30, temperature=1.0, seed=0) as backend:
        agents = [Agent(backend, [add], max_turns=2, thinking=i % 2 == 0) for i in range(4)]
        results = await asyncio.gather(*[a.run(f"task {i}") for i, a in enumerate(agents)])
        assert backend.engine.stats.max_batch_seen > 1  # the four runs decoded together
    for r in results:
        assert r.status in ("completed", "max_turns"), r.error
        assert r.usage.completion_tokens <= 30 * r.turns + r.turns
        assert r.usage.prompt_tokens > 0 and r.cost == 0.0


async def test_a_conversation_must_end_with_a_user_or_tool_message(random_checkpoint: Path) -> None:
    async with LocalDSABackend(random_checkpoint) as backend:
        request = ChatRequest(messages=[UserMessage(content="hi"), AssistantMessage(content="hello")])
        with pytest.raises(BadRequestError, match="must end"):
            [d async for d in backend.stream(request)]


def test_checkpoint_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        LocalDSABackend(tmp_path / "nowhere")
    if not (Path(__file__).parents[2] / "model_backend/local/checkpoint/model.safetensors").exists():
        with pytest.raises(ConfigurationError, match="init_random_checkpoint"):
            LocalDSABackend()
