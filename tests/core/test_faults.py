"""Faults, against a real HTTP server that injects them (agentkit.testing.fault_server): every transport failure is
typed and retried by one rule, a turn's attempts come from one budget bounded in count, window and deadline, tools
never run twice, and the API key never appears in anything a user can print or save."""

from __future__ import annotations

import json
import random
import string
import time

import httpx
import pytest

from agentkit import Agent, ChatRequest, UserMessage
from agentkit.backends import remote
from agentkit.backends.remote import RemoteBackend
from agentkit.errors import ConnectionError, ProtocolError
from agentkit.redaction import MIN_SECRET_LENGTH
from agentkit.retry import RetryPolicy
from agentkit.testing.fault_server import FAULTS, FaultServer, leaked, refused_url, run_fault

FAST = RetryPolicy(max_attempts=4, backoff_base=0.02, backoff_max=0.1, max_retry_after=0.5, window=5.0)
FAST_TIMEOUT = httpx.Timeout(0.5)
ATTEMPT_SECONDS = 4 * 0.5  # pool + connect + write + read
FAST_WORST = FAST.worst_case_seconds(ATTEMPT_SECONDS)

# fault -> (status, error type, attempts, tool executions) with FAST, the fault on every request, streamed
EXPECTED = {
    "refuse": ("error", "ConnectionError", 4, 0),
    "reset": ("error", "ConnectionError", 4, 0),
    "hang": ("error", "ConnectionError", 4, 0),
    "hang_mid_stream": ("error", "ConnectionError", 4, 0),
    "drop": ("error", "ConnectionError", 4, 0),
    "drop_after_tool_call": ("error", "ConnectionError", 1, 0),
    "cut_json": ("error", "ConnectionError", 4, 0),
    "html": ("error", "ProtocolError", 1, 0),
    "wrong_content_type": ("error", "ProtocolError", 1, 0),
    "echo_auth_stream": ("error", "ProtocolError", 1, 0),
    "echo_auth_error": ("error", "ServerError", 4, 0),
    "key_split": ("completed", None, 2, 1),
    "no_usage": ("completed", None, 2, 1),
    "status_429": ("error", "RateLimitError", 4, 0),
    "status_503": ("error", "ServerError", 4, 0),
    "stream_error": ("error", "StreamError", 4, 0),
}


def test_the_worst_case_of_one_turn_is_stated() -> None:
    assert remote.WORST_CASE_ATTEMPTS == 5
    assert remote.ATTEMPT_SECONDS == 190.0  # pool 30 + connect 10 + write 30 + read 120
    assert (
        remote.WORST_CASE_SECONDS == 310.0
    )  # the last attempt starts by the 120 s window, then 190 s at most
    assert set(EXPECTED) == set(FAULTS) - {"ok"}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
async def test_each_fault_streamed(fault: str) -> None:
    row, result, _ = await run_fault(fault, retry=FAST, timeout=FAST_TIMEOUT)
    assert (row.status, row.error_type, row.attempts, row.tool_executions) == EXPECTED[fault], (
        row,
        result.error,
    )
    assert not row.key_appeared
    assert row.seconds <= FAST_WORST + 1.0
    if fault == "no_usage":
        assert result.usage.unreported == 2 and not result.usage.complete
        assert result.to_dict()["usage"]["unreported_requests"] == 2
    if fault == "key_split":
        assert "the header said ***, which I repeat: ***." in result.messages[1].content


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("cut_json", ("error", "ConnectionError", 4, 0)),
        ("hang_mid_stream", ("error", "ConnectionError", 4, 0)),
        ("html", ("error", "ProtocolError", 1, 0)),
        ("wrong_content_type", ("error", "ProtocolError", 1, 0)),
        ("echo_auth_stream", ("error", "ProtocolError", 1, 0)),
        ("echo_auth_error", ("error", "ServerError", 4, 0)),
        ("status_503", ("error", "ServerError", 4, 0)),
        ("no_usage", ("completed", None, 2, 1)),
        ("key_split", ("completed", None, 2, 1)),
    ],
)
async def test_each_fault_not_streamed_follows_the_same_rule(fault: str, expected: tuple) -> None:
    row, result, _ = await run_fault(fault, stream=False, retry=FAST, timeout=FAST_TIMEOUT)
    assert (row.status, row.error_type, row.attempts, row.tool_executions) == expected, (row, result.error)
    assert not row.key_appeared


@pytest.mark.parametrize(
    "fault", ["refuse", "reset", "drop", "cut_json", "status_503", "stream_error", "hang_mid_stream"]
)
async def test_a_fault_once_is_recovered_from(fault: str) -> None:
    row, result, events = await run_fault(fault, retry=FAST, timeout=FAST_TIMEOUT, permanent=False)
    if fault == "refuse":  # nothing listens at all: no "once" for a refused address
        assert row.status == "error" and row.attempts == 4
        return
    assert row.status == "completed", result.error
    assert row.attempts == 3 and row.tool_executions == 1 and not row.key_appeared


async def test_one_budget_is_shared_by_backend_and_loop() -> None:
    """A stream that dies midway is retried by the loop, a refused retry by the backend: one count for both."""
    with FaultServer(["drop", "reset", "drop", "reset", "drop", "ok"]) as srv:
        async with RemoteBackend("deepseek", base_url=srv.base_url, api_key="k" * 20, retry=FAST) as be:
            result = await Agent(be).run("x")
    assert result.status == "error" and result.attempts == 4 and len(srv.seen) == 4


async def test_the_deadline_bounds_retries_and_hangs() -> None:
    with FaultServer(["hang"], then="hang") as srv:
        async with RemoteBackend(
            "deepseek", base_url=srv.base_url, api_key="k" * 20
        ) as be:  # default 120 s read timeout
            t0 = time.monotonic()
            result = await Agent(be, deadline=0.8).run("x")
    assert result.status == "deadline" and time.monotonic() - t0 < 2.0 and result.attempts == 1
    # a refused server: the next pause would pass the deadline, so the turn stops before it instead of sleeping
    async with RemoteBackend("deepseek", base_url=refused_url(), api_key="k" * 20) as be:
        t0 = time.monotonic()
        result = await Agent(be, deadline=1.2).run("x")
    assert time.monotonic() - t0 < 1.5 and result.status in ("error", "deadline") and result.attempts <= 3


async def test_the_default_policy_against_a_refusing_server() -> None:
    """The real defaults: 5 attempts, 0.5 + 1 + 2 + 4 s of pauses (the issue measured 15 attempts and 22.6 s)."""
    t0 = time.monotonic()
    async with RemoteBackend("deepseek", base_url=refused_url(), api_key="k" * 20) as be:
        result = await Agent(be).run("x")
    took = time.monotonic() - t0
    assert result.status == "error" and result.error_type == "ConnectionError" and result.attempts == 5
    assert 7.5 <= took < 10.0


async def test_direct_backend_use_has_its_own_budget() -> None:
    with FaultServer(["cut_json", "cut_json", "ok"]) as srv:
        async with RemoteBackend(
            "deepseek", base_url=srv.base_url, api_key="k" * 20, stream=False, retry=FAST
        ) as be:
            delta = await be.complete(ChatRequest([UserMessage(content="hi")]))
    assert delta.content == "Hello." and len(srv.seen) == 3
    with FaultServer(["html"]) as srv:
        async with RemoteBackend(
            "deepseek", base_url=srv.base_url, api_key="k" * 20, stream=False, retry=FAST
        ) as be:
            with pytest.raises(ProtocolError, match="check base_url"):
                await be.complete(ChatRequest([UserMessage(content="hi")]))
    async with RemoteBackend("deepseek", base_url=refused_url(), api_key="k" * 20, retry=FAST) as be:
        with pytest.raises(ConnectionError, match="cannot reach"):
            await be.complete(ChatRequest([UserMessage(content="hi")]))


async def test_a_short_key_never_mangles_messages_and_its_header_form_never_shows() -> None:
    with FaultServer(["echo_auth_error"], then="echo_auth_error") as srv:
        async with RemoteBackend("deepseek", base_url=srv.base_url, api_key="k", retry=FAST) as be:
            result = await Agent(be).run("thinking")
    assert result.error is not None
    assert (
        "refused the request; headers: Authorization: Bearer ***, Content-Type: application/json"
        in result.error
    )
    assert "Bearer k" not in json.dumps(result.to_dict()) and "thinking" in json.dumps(result.to_dict())


@pytest.mark.parametrize("seed", range(12))
async def test_property_random_faults_and_key_lengths_never_leak_the_key(seed: int) -> None:
    rng = random.Random(seed)
    length = rng.choice([1, 2, 3, 5, 7, 8, 9, 12, 20, 32, 51])
    key = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(length))
    faults = [f for f in FAULTS if f not in ("refuse", "hang")]
    plan = [rng.choice(faults) for _ in range(8)]
    stream = rng.random() < 0.7
    policy = RetryPolicy(
        max_attempts=rng.randint(1, 4), backoff_base=0.01, backoff_max=0.05, max_retry_after=0.2, window=5.0
    )
    from agentkit.testing.fault_server import capture_logs

    with capture_logs() as logs, FaultServer(plan, then=rng.choice(faults)) as srv:
        async with RemoteBackend("deepseek", base_url=srv.base_url, api_key=key, stream=stream, retry=policy,
                                 timeout=httpx.Timeout(0.3)) as be:  # fmt: skip
            events = [
                e async for e in Agent(be, deadline=20).stream("count the words of 'thinking about keys'")
            ]
            result = events[-1].result
            texts = [
                repr(result),
                json.dumps(result.to_dict()),
                repr(be),
                str(vars(be)),
                *map(repr, events),
                *logs,
            ]
    assert result.status in ("completed", "error", "max_turns"), result
    assert not leaked(key, *texts), (key, plan, [t for t in texts if key in t][:2])
    if len(key) >= MIN_SECRET_LENGTH:
        assert all(key not in t for t in texts)
    assert result.attempts <= policy.max_attempts * result.turns
