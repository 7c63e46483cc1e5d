"""DeepSeek V4 as the default: the provider table, the V4 reasoning rule against a server that enforces it, and the
edge cases other frameworks broke on (empty reasoning on a tool call, content null, reasoning only in deltas, the
developer role, parallel tool calls, an empty tool result)."""

from __future__ import annotations

import logging

import httpx
import pytest

from agentkit import Agent, ChatRequest, UserMessage, tool
from agentkit.backends.providers import PROFILES, ModelRules
from agentkit.backends.remote import RemoteBackend
from agentkit.errors import ConfigurationError
from agentkit.messages import (
    DEEPSEEK_V4,
    DEEPSEEK_V32,
    NO_REASONING,
    AssistantMessage,
    DeveloperMessage,
    ReasoningReplay,
    ToolCall,
    ToolMessage,
    parse_messages,
    to_wire,
)
from agentkit.testing.scripted_server import Reply

KEY = "sk-v4-test-0123456789abcdef"
SEEN: list[str] = []


@tool
def lookup(city: str) -> str:
    """Population of a city."""
    SEEN.append(city)
    return {"Lima": "10.1 M", "Quito": "2.8 M", "Oslo": "0.7 M"}.get(city, "unknown")


@tool
def nothing(city: str) -> str:
    """Returns nothing at all."""
    SEEN.append(f"nothing {city}")
    return ""


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def test_the_default_model_is_v4_flash_with_the_v4_rule() -> None:
    be = RemoteBackend("deepseek", api_key=KEY)
    assert be.model == "deepseek-v4-flash" and be.policy == DEEPSEEK_V4
    assert be.rules.thinks_by_default and be.rules.reasoning_efforts == ("low", "high", "max")
    for model in ("deepseek-v4-flash", "deepseek-v4-pro"):
        rules = PROFILES["deepseek"].rules_for(model)
        assert rules.policy.replay is ReasoningReplay.TOOL_TURNS and rules.thinks_by_default
    # V3.2 weights behind vLLM / SGLang keep the V3.2 template's rule
    assert PROFILES["vllm"].rules_for("deepseek-ai/DeepSeek-V3.2").policy == DEEPSEEK_V32
    assert PROFILES["sglang"].rules_for("deepseek-ai/DeepSeek-V3.2").policy == DEEPSEEK_V32


def test_legacy_ids_are_what_they_are_now(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="agentkit.remote"):
        chat = RemoteBackend("deepseek", "deepseek-chat", api_key=KEY)
        reasoner = RemoteBackend("deepseek", "deepseek-reasoner", api_key=KEY)
    # routed to deepseek-v4-flash: the V4 reasoning rule; chat = non-thinking mode, reasoner = thinking mode
    assert chat.policy == DEEPSEEK_V4 and not chat.rules.thinks_by_default
    assert reasoner.policy == DEEPSEEK_V4 and reasoner.rules.thinks_by_default
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all(
        "retired on 2026-07-24" in w and "deepseek-v4-flash" in w for w in warnings
    )


def test_user_rules_override_any_id_builtins_included() -> None:
    mine = ModelRules(NO_REASONING, thinks_by_default=False)
    be = RemoteBackend("deepseek", "deepseek-chat", api_key=KEY, model_rules={"deepseek-chat": mine})
    assert be.rules is mine and be.policy == NO_REASONING
    be = RemoteBackend("deepseek", "deepseek-v4-pro", api_key=KEY, model_rules={"deepseek-*": mine})
    assert be.rules is mine  # a user's glob beats a built-in exact id
    assert (
        RemoteBackend("deepseek", "deepseek-v4-flash", api_key=KEY).rules is not mine
    )  # nothing global changed


def test_v4_request_shaping() -> None:
    be = RemoteBackend("deepseek", api_key=KEY)
    messages = [UserMessage(content="x")]
    body = be.build_body(
        ChatRequest(messages, temperature=0.2, top_p=0.9, reasoning_effort="max"), stream=True
    )
    assert body["reasoning_effort"] == "max" and "thinking" not in body  # thinking is on by default
    assert "temperature" not in body and "top_p" not in body  # ignored in thinking mode: not sent
    body = be.build_body(ChatRequest(messages, thinking=False, temperature=0.2), stream=True)
    assert body["thinking"] == {"type": "disabled"} and body["temperature"] == 0.2
    assert "reasoning_effort" not in be.build_body(
        ChatRequest(messages, thinking=False, reasoning_effort="high"), stream=True
    )
    assert (
        be.build_body(ChatRequest(messages, reasoning_effort="medium"), stream=True)["reasoning_effort"]
        == "high"
    )
    with pytest.raises(ConfigurationError, match="use one of low, high, max"):
        be.build_body(ChatRequest(messages, reasoning_effort="extreme"), stream=True)


async def test_two_turns_with_parallel_tool_calls_pass_under_the_v4_rule_with_the_default_model(
    serve,
) -> None:
    script = [
        Reply(
            reasoning="Two lookups at once.",
            tool_calls=[("lookup", '{"city": "Lima"}'), ("lookup", '{"city": "Quito"}')],
        ),
        Reply(reasoning="Lima is bigger.", content="Lima (10.1 M) is bigger than Quito (2.8 M)."),
        Reply(
            reasoning="And Oslo, again with two calls.",
            tool_calls=[("lookup", '{"city": "Oslo"}'), ("nothing", '{"city": "Oslo"}')],
        ),
        Reply(reasoning="Done.", content="Oslo has 0.7 M."),
    ]
    srv = serve(script, enforce="deepseek-v4", api_key=KEY, interleave_tool_calls=True, piece=4)
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY) as be:
        agent = Agent(be, [lookup, nothing])
        first = await agent.run("Which is bigger, Lima or Quito?")
        assert first.status == "completed", first.error
        second = await agent.run([*first.messages, UserMessage(content="And Oslo?")])
    assert second.status == "completed", second.error
    assert second.output == "Oslo has 0.7 M." and SEEN == ["Lima", "Quito", "Oslo", "nothing Oslo"]
    assert all(r["model"] == "deepseek-v4-flash" for r in srv.requests)
    last = srv.requests[-1]["messages"]
    carried = {i: m["reasoning_content"] for i, m in enumerate(last) if "reasoning_content" in m}
    # turn 1 used tools, so all of its reasoning still travels after the second user message
    assert carried == {1: "Two lookups at once.", 4: "Lima is bigger.", 6: "And Oslo, again with two calls."}
    tool_results = [m["content"] for m in last if m["role"] == "tool"]
    assert tool_results == ["10.1 M", "2.8 M", "0.7 M", "(the tool returned an empty result)"]


async def test_without_the_v4_rule_turn_two_fails_like_the_real_api(serve) -> None:
    """The V3.2 rule drops turn 1's reasoning after a new user message: the V4 API refuses that."""
    script = [Reply(reasoning="r1", tool_calls=[("lookup", '{"city": "Lima"}')]), Reply(reasoning="a1", content="10.1 M"),
              Reply(content="never")]  # fmt: skip
    srv = serve(script, enforce="deepseek-v4")
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY, policy=DEEPSEEK_V32) as be:
        agent = Agent(be, [lookup])
        first = await agent.run("Lima?")
        second = await agent.run([*first.messages, UserMessage(content="Sure?")])
    assert first.status == "completed"
    assert second.status == "error" and second.error_type == "BadRequestError"
    assert "The reasoning_content in the thinking mode must be passed back to the API." in second.error


async def test_empty_reasoning_and_null_content_on_a_tool_call(serve) -> None:
    """A tool call streamed with no reasoning at all: the field still travels (as ""), content as null."""
    srv = serve(
        [Reply(tool_calls=[("lookup", '{"city": "Oslo"}')]), Reply(content="0.7 M")], enforce="deepseek-v4"
    )
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY) as be:
        result = await Agent(be, [lookup]).run("Oslo?")
    assert result.status == "completed", result.error
    sent = srv.requests[1]["messages"][1]
    assert sent["reasoning_content"] == "" and sent["content"] is None and sent["tool_calls"]


async def test_null_content_and_reasoning_in_a_non_streamed_response(serve) -> None:
    srv = serve([Reply(reasoning="think", tool_calls=[("lookup", '{"city": "Lima"}')]), Reply(reasoning="ok", content="10.1 M")],
                enforce="deepseek-v4")  # fmt: skip
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY, stream=False) as be:
        result = await Agent(be, [lookup]).run("Lima?")
    assert result.status == "completed", result.error
    assert result.messages[1].content is None and result.messages[1].reasoning_content == "think"
    assert srv.requests[1]["messages"][1]["reasoning_content"] == "think"


async def test_reasoning_that_arrives_only_in_deltas_is_kept(serve) -> None:
    """Reasoning split over many one-character deltas and 3-byte network chunks is assembled and sent back whole."""
    thought = "Ünïcode thinking, split everywhere ✓"
    srv = serve([Reply(reasoning=thought, tool_calls=[("lookup", '{"city": "Quito"}')]), Reply(content="2.8 M")],
                enforce="deepseek-v4", piece=1, split_bytes=3)  # fmt: skip
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY) as be:
        result = await Agent(be, [lookup]).run("Quito?")
    assert result.status == "completed", result.error
    assert result.messages[1].reasoning_content == thought
    assert srv.requests[1]["messages"][1]["reasoning_content"] == thought


async def test_developer_role_is_sent_as_user_to_deepseek(serve) -> None:
    history = parse_messages(
        [{"role": "developer", "content": "Answer in one word."}, {"role": "user", "content": "Hi"}]
    )
    assert isinstance(history[0], DeveloperMessage)
    assert to_wire(history, PROFILES["openai"].policy)[0]["role"] == "developer"
    srv = serve([Reply(content="Hello")], enforce="deepseek-v4")
    async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=KEY) as be:
        result = await Agent(be).run(history)
    assert result.status == "completed", result.error
    assert [m["role"] for m in srv.requests[0]["messages"]] == ["user", "user"]
    # and the server really refuses the role, as DeepSeek does
    raw = [{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}]
    srv2 = serve([Reply(content="x")], enforce="deepseek-v4")
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{srv2.base_url}/chat/completions", json={"model": "deepseek-v4-flash", "messages": raw}
        )
    assert r.status_code == 400 and "unknown variant `developer`" in r.text


def test_developer_message_counts_as_a_user_turn_for_the_reasoning_rule() -> None:
    call = ToolCall(id="c1", name="lookup", arguments="{}")
    msgs = [
        UserMessage(content="q"),
        AssistantMessage(reasoning_content="r1", tool_calls=[call]),
        ToolMessage(tool_call_id="c1", name="lookup", content="v"),
        AssistantMessage(reasoning_content="a1", content="answer"),
        DeveloperMessage(content="now be brief"),
        AssistantMessage(reasoning_content="r2", content="ok"),
    ]
    wire = to_wire(msgs, DEEPSEEK_V4)
    assert [m.get("reasoning_content") for m in wire] == [None, "r1", None, "a1", None, None]
    assert wire[4] == {"role": "user", "content": "now be brief"}
