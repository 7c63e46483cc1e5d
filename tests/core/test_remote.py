"""The remote backend and the loop against a real HTTP server speaking DeepSeek's and OpenAI's wire formats."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from agentkit import Agent, ChatRequest, UserMessage, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ContextLengthError,
    RateLimitError,
)
from agentkit.testing.scripted_server import Fail, Reply

KEY = "sk-test-0123456789abcdef"
CALLS: list[dict] = []


@tool
def get_weather(city: str, unit: str = "C") -> str:
    """Current weather of a city."""
    CALLS.append({"city": city, "unit": unit})
    return f"{city}: 21{unit}, sunny"


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def backend(srv, provider: str = "deepseek", model: str = "deepseek-v4-flash", **kw) -> RemoteBackend:
    return RemoteBackend(provider, model, base_url=srv.base_url, api_key=KEY, backoff_base=0.01, **kw)


async def test_reasoning_then_tool_calls_then_answer(serve) -> None:
    srv = serve(
        [
            Reply(reasoning="Need the weather in Paris. Ünïcode ✓ 天气", tool_calls=[("get_weather", '{"city": "Paris"}')]),
            Reply(reasoning="It is sunny.", content="Paris is sunny, 21°C. ☀️"),
        ],
        enforce="deepseek-v4",
        api_key=KEY,
        split_bytes=5,
        crlf=True,
        keepalive=True,
    )
    async with backend(srv) as be:
        result = await Agent(be, [get_weather]).run("Weather in Paris?")
    assert result.status == "completed", result.error
    assert result.output == "Paris is sunny, 21°C. ☀️"
    assert CALLS == [{"city": "Paris", "unit": "C"}]
    assert result.messages[1].reasoning_content == "Need the weather in Paris. Ünïcode ✓ 天气"
    assert result.turns == 2 and result.tool_calls == 1
    # usage from the usage-only final chunk of each response, summed
    sent = srv.requests
    assert sent[0]["stream"] is True and sent[0]["stream_options"] == {"include_usage": True}
    assert result.usage.requests == 2 and result.usage.prompt_tokens > 0
    assert result.usage.prompt_tokens == result.usage.cache_hit_tokens + result.usage.cache_miss_tokens
    assert result.usage.reasoning_tokens > 0 and result.cost > 0
    # the second request carried the first response's reasoning (the server enforces it; check it was verbatim)
    assert sent[1]["messages"][1]["reasoning_content"] == "Need the weather in Paris. Ünïcode ✓ 天气"


async def test_parallel_interleaved_tool_calls_run_concurrently(serve) -> None:
    order: list[str] = []

    @tool
    async def slow_echo(text: str, delay: float) -> str:
        """Echo after a delay."""
        order.append(f"start {text}")
        await asyncio.sleep(delay)
        order.append(f"end {text}")
        return text.upper()

    srv = serve(
        [
            Reply(
                reasoning="Three at once.",
                tool_calls=[
                    ("slow_echo", '{"text": "a", "delay": 0.4}'),
                    ("slow_echo", '{"text": "b", "delay": 0.1}'),
                    ("slow_echo", '{"text": "c", "delay": 0.2}'),
                ],
            ),
            Reply(content="done"),
        ],
        interleave_tool_calls=True,
        piece=3,
        enforce="deepseek-v4",
    )
    async with backend(srv) as be:
        result = await Agent(be, [slow_echo]).run("go")
    assert result.status == "completed"
    # Concurrency shown by the event order, not by a wall-clock bound that a loaded machine breaks: all three
    # start before any ends, and they end by their delays, not in call order.
    assert order == ["start a", "start b", "start c", "end b", "end c", "end a"], order
    # results go back in call order, whatever the completion order
    tool_msgs = srv.requests[1]["messages"][2:]
    assert [m["content"] for m in tool_msgs] == ["A", "B", "C"]
    ids = [c["id"] for c in srv.requests[1]["messages"][1]["tool_calls"]]
    assert [m["tool_call_id"] for m in tool_msgs] == ids and len(set(ids)) == 3


async def test_malformed_arguments_are_recovered_by_the_model(serve) -> None:
    srv = serve(
        [
            Reply(reasoning="try", tool_calls=[("get_weather", '{"city": "Paris"')]),  # truncated JSON
            Reply(reasoning="fix", tool_calls=[("get_wether", '{"city": "Paris"}')]),  # unknown tool
            Reply(reasoning="fix again", tool_calls=[("get_weather", '{"town": "Paris"}')]),  # wrong parameter
            Reply(reasoning="now right", tool_calls=[("get_weather", '{"city": "Paris"}')]),
            Reply(content="Sunny."),
        ],
        enforce="deepseek-v4",
    )
    async with backend(srv) as be:
        result = await Agent(be, [get_weather]).run("Weather?")
    assert result.status == "completed" and result.output == "Sunny."
    assert CALLS == [{"city": "Paris", "unit": "C"}]
    errors = [m for m in result.messages if m.role == "tool" and m.is_error]
    assert len(errors) == 3 and result.tool_errors == 3
    assert "not valid JSON" in errors[0].content
    assert "Unknown tool 'get_wether'. Available tools: get_weather." == errors[1].content
    assert "'city' is required but missing" in errors[2].content and "'town' is not a parameter" in errors[2].content


async def test_429_with_retry_after_then_success(serve) -> None:
    srv = serve([Fail(429, "Rate limit reached", retry_after="0.3"), Reply(content="hi")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        t0 = time.monotonic()
        result = await Agent(be).run("hello")
    assert result.status == "completed" and result.output == "hi"
    assert time.monotonic() - t0 >= 0.3  # Retry-After was honoured, not the 10 ms backoff
    assert len(srv.requests) == 2


async def test_5xx_then_success_and_persistent_5xx(serve) -> None:
    srv = serve([Fail(500, "boom"), Fail(503, "busy"), Reply(content="ok")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        assert (await Agent(be).run("x")).output == "ok"
    srv = serve([Fail(502, "bad gateway")] * 3)
    async with backend(srv, model="deepseek-v4-flash", max_retries=2) as be:
        result = await Agent(be).run("x")
    assert result.status == "error" and result.error_type == "ServerError"
    assert result.error == "deepseek: HTTP 502: bad gateway" and len(srv.requests) == 3


async def test_retry_after_longer_than_allowed_fails_fast(serve) -> None:
    srv = serve([Fail(429, "slow down", retry_after="3600")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        with pytest.raises(RateLimitError, match="slow down"):
            async for _ in be.stream(ChatRequest(messages=[UserMessage(content="x")])):
                pass
    assert len(srv.requests) == 1


async def test_stream_dying_midway_is_retried_when_no_tool_call_arrived(serve) -> None:
    srv = serve(
        [
            Reply(reasoning="a long thought that gets cut", cut_after=3),
            Reply(reasoning="second try", content="fine"),
        ],
        enforce="deepseek-v4",
    )
    async with backend(srv) as be:
        events = [e async for e in Agent(be).stream("x")]
    kinds = [type(e).__name__ for e in events]
    assert "TurnRetry" in kinds
    result = events[-1].result
    assert result.status == "completed" and result.output == "fine"
    assert result.messages[-1].reasoning_content == "second try"  # nothing of the cut attempt leaked in


async def test_stream_dying_after_tool_calls_never_runs_them_twice(serve) -> None:
    # 1 role chunk + 1 reasoning chunk + tool fragments... cut after the first tool-call fragments arrived.
    srv = serve(
        [Reply(reasoning="r", tool_calls=[("get_weather", '{"city": "Rome"}')], cut_after=4), Reply(content="no")],
        enforce="deepseek-v4",
    )
    async with backend(srv) as be:
        result = await Agent(be, [get_weather]).run("x")
    assert result.status == "error" and result.error_type == "ConnectionError"
    assert "stream cut" in result.error
    assert CALLS == [] and len(srv.requests) == 1  # not executed, and the request was not replayed


async def test_error_object_inside_stream(serve) -> None:
    srv = serve([Reply(content="partial answer", error_after=2)] * 3)
    async with backend(srv, model="deepseek-v4-flash") as be:
        result = await Agent(be, stream_retries=1).run("x")
    assert result.status == "error" and result.error_type == "StreamError"
    assert "server overloaded, please retry" in result.error and len(srv.requests) == 2


async def test_400_message_reaches_the_user(serve) -> None:
    srv = serve([Fail(400, "Invalid 'messages': the field 'foo' is not allowed")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        result = await Agent(be).run("x")
    assert result.status == "error" and result.error_type == "BadRequestError"
    assert "the field 'foo' is not allowed" in result.error and len(srv.requests) == 1
    srv = serve([Fail(400, "This model's maximum context length is 131072 tokens. However, you requested 200000")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        with pytest.raises(ContextLengthError):
            await be.complete(ChatRequest(messages=[UserMessage(content="x")]))


async def test_auth_error_never_shows_the_key(serve) -> None:
    srv = serve([Reply(content="x")], api_key="sk-the-right-one")
    be = RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key=KEY)
    assert KEY not in repr(be) and KEY not in str(vars(be).get("_warned"))
    with pytest.raises(AuthenticationError) as info:
        await be.complete(ChatRequest(messages=[UserMessage(content="x")]))
    await be.aclose()
    assert "Authentication Fails" in str(info.value) and "DEEPSEEK_API_KEY" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_missing_key_says_which_variable(monkeypatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="set the environment variable DEEPSEEK_API_KEY"):
        RemoteBackend("deepseek", "deepseek-v4-flash")
    with pytest.raises(ConfigurationError, match="unknown provider 'deepsek'; choose one of: deepseek, ollama"):
        RemoteBackend("deepsek", "x")


async def test_connection_refused_is_a_typed_error_after_retries() -> None:
    be = RemoteBackend("vllm", "m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_base=0.01)
    with pytest.raises(ConnectionError, match="cannot reach http://127.0.0.1:9/v1"):
        await be.complete(ChatRequest(messages=[UserMessage(content="x")]))
    await be.aclose()


async def test_non_streaming_mode(serve) -> None:
    srv = serve(
        [Reply(reasoning="think", tool_calls=[("get_weather", '{"city": "Oslo"}')]), Reply(reasoning="ok", content="Cold.")],
        enforce="deepseek-v4",
    )
    async with backend(srv, stream=False) as be:
        result = await Agent(be, [get_weather]).run("Oslo?")
    assert result.status == "completed" and result.output == "Cold." and CALLS == [{"city": "Oslo", "unit": "C"}]
    assert "stream" not in srv.requests[0] and result.messages[1].reasoning_content == "think"


async def test_thinking_mode_request_shaping_warns_once(serve, caplog) -> None:
    srv = serve([Reply(content="a"), Reply(content="b")], enforce="deepseek-v4")
    async with backend(srv, model="deepseek-v4-flash") as be:
        request = ChatRequest(
            messages=[UserMessage(content="x")],
            thinking=True,
            temperature=0.3,
            tool_choice="required",
            extra={"logprobs": True, "top_logprobs": 2},
        )
        with caplog.at_level(logging.WARNING, logger="agentkit.remote"):
            for _ in range(2):
                async for _ in be.stream(request):
                    pass
    body = srv.requests[0]
    assert body["thinking"] == {"type": "enabled"} and body["tool_choice"] == "auto"
    assert not {"temperature", "logprobs", "top_logprobs"} & set(body)
    texts = [r.getMessage() for r in caplog.records]
    assert len(texts) == 4, texts  # logprobs, top_logprobs, temperature, tool_choice: once each over two requests
    assert any("rejects a forced tool_choice" in t for t in texts)


@pytest.mark.parametrize(
    ("provider", "model", "field", "enforce", "expect_body"),
    [
        ("deepseek", "deepseek-v4-flash", "reasoning_content", "deepseek-v4", {}),
        ("vllm", "served", "reasoning_content", "deepseek-v3.2", {"chat_template_kwargs": {"thinking": True, "enable_thinking": True}}),
        ("sglang", "served", "reasoning_content", "deepseek-v3.2", {"chat_template_kwargs": {"thinking": True, "enable_thinking": True}}),
        ("openrouter", "deepseek/deepseek-v3.2", "reasoning", None, {"reasoning": {"enabled": True}}),
        ("ollama", "qwen3", "reasoning", None, {"reasoning_effort": "medium"}),
        ("openai", "o4-mini", "reasoning_content", "never", {"reasoning_effort": "medium"}),
    ],
)
async def test_profiles_over_two_user_turns_with_tools(serve, provider, model, field, enforce, expect_body) -> None:
    """Turn 1 uses a tool, turn 2 uses a tool again: every request obeys the provider's reasoning rule."""
    script = [
        Reply(reasoning="t1 think", tool_calls=[("get_weather", '{"city": "Lima"}')]),
        Reply(reasoning="t1 answer", content="Lima sunny"),
        Reply(reasoning="t2 think", tool_calls=[("get_weather", '{"city": "Quito"}')]),
        Reply(reasoning="t2 answer", content="Quito sunny"),
    ]
    srv = serve(script, reasoning_field=field, enforce=enforce)
    async with backend(srv, provider=provider, model=model) as be:
        agent = Agent(be, [get_weather], thinking=True)
        first = await agent.run("Lima?")
        assert first.status == "completed", first.error
        assert first.messages[1].reasoning_content == "t1 think"  # read from the provider's field name
        second = await agent.run([*first.messages, UserMessage(content="Quito?")])
    assert second.status == "completed", second.error
    assert second.output == "Quito sunny" and len(srv.requests) == 4
    for key, value in expect_body.items():
        assert srv.requests[0][key] == value
    last = srv.requests[3]["messages"]
    carried = {i: m[field] for i, m in enumerate(last) if field in m}
    if provider == "deepseek":  # V4: turn 1's tool turn keeps its reasoning after the new user message
        assert carried == {1: "t1 think", 3: "t1 answer", 5: "t2 think"}
    elif provider == "openai":
        assert carried == {}
    else:
        assert carried == {5: "t2 think"}


async def test_wrong_policy_is_refused_like_the_real_api(serve) -> None:
    """A client that drops current-turn reasoning gets DeepSeek's 400, proving the server-side check bites."""
    from agentkit.messages import NO_REASONING

    srv = serve(
        [Reply(reasoning="r", tool_calls=[("get_weather", '{"city": "Bern"}')]), Reply(content="x")],
        enforce="deepseek-v3.2",
    )
    async with backend(srv, policy=NO_REASONING) as be:
        result = await Agent(be, [get_weather]).run("Bern?")
    assert result.status == "error" and result.error_type == "BadRequestError"
    assert "Missing `reasoning_content` field in the assistant message at message index 1" in result.error


async def test_usage_in_final_content_chunk(serve) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 40, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36,
             "completion_tokens_details": {"reasoning_tokens": 30}}  # fmt: skip
    srv = serve([Reply(reasoning="r", content="c", usage=usage)], usage_chunk=False)
    async with backend(srv) as be:
        result = await Agent(be).run("x")
    u = result.usage
    assert (u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cache_hit_tokens, u.cache_miss_tokens) == (100, 40, 30, 64, 36)
    assert result.cost == pytest.approx((64 * 0.028 + 36 * 0.14 + 40 * 0.28) / 1e6)  # V4-Flash list prices
    assert json.loads(json.dumps(result.to_dict()))["usage"]["total_tokens"] == 140


async def test_streamed_responses_reuse_one_connection(serve) -> None:
    srv = serve([Reply(tool_calls=[("get_weather", '{"city": "A"}')]), Reply(tool_calls=[("get_weather", '{"city": "B"}')]), Reply(content="x")])
    async with backend(srv, model="deepseek-v4-flash") as be:
        result = await Agent(be, [get_weather]).run("x")
    assert result.status == "completed" and len(srv.requests) == 3
    assert srv.connections == 1  # each stream was read to its end, so the pooled connection was reused


async def test_key_never_reaches_logs(serve, caplog) -> None:
    srv = serve([Fail(401, f"Incorrect API key provided: {KEY}"), Fail(429, "slow", retry_after="0"), Reply(content="x")])
    with caplog.at_level(logging.DEBUG):
        be = backend(srv, model="deepseek-v4-flash")
        with pytest.raises(AuthenticationError) as info:
            await be.complete(ChatRequest(messages=[UserMessage(content="x")]))
        await be.complete(ChatRequest(messages=[UserMessage(content="x")]))
        await be.aclose()
    assert "Incorrect API key provided: ***" in str(info.value)  # a server echoing the key is redacted
    assert KEY not in str(info.value) and KEY not in repr(be._client.headers)
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records and KEY not in logged
