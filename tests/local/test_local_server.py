"""`agentkit serve` over real HTTP on 127.0.0.1: the official `openai` client and agentkit's own RemoteBackend as
clients, the memorised tiny model (and a remote provider) as the backend."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
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
    eventually,
)

from agentkit import Agent
from agentkit.backends.local.backend import LocalDSABackend
from agentkit.backends.remote import RemoteBackend
from agentkit.backends.server import ChatBody, ChatServer, ServerLimits, to_chat_request
from agentkit.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
from agentkit.testing.scripted_server import Reply


@pytest.fixture(scope="module")
def server(memorised_checkpoint: Path) -> Iterator[ChatServer]:
    backend = LocalDSABackend(memorised_checkpoint, max_tokens=120)
    with ChatServer(backend, port=0, api_key="sk-test") as srv:
        yield srv


def client(server: ChatServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def add_messages() -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ADD_QUESTION}]


def test_openai_client_streams_reasoning_and_a_tool_call(server: ChatServer) -> None:
    stream = client(server).chat.completions.create(
        model="local-dsa", messages=add_messages(), tools=[ADD_TOOL], stream=True,
        extra_body={"thinking": {"type": "enabled"}},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == ADD_REASONING
    assert len(chunks) > 5  # streamed in pieces, not one blob
    frags = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert frags[0].id and frags[0].function.name == "add" and frags[0].type == "function"
    assert json.loads("".join(f.function.arguments or "" for f in frags)) == {"a": 17, "b": 25}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.prompt_tokens > 100 and chunks[-1].usage.completion_tokens > 10
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens > 0


def test_openai_client_completes_the_tool_turn_without_streaming(server: ChatServer) -> None:
    messages = add_messages() + [
        {"role": "assistant", "content": None, "reasoning_content": ADD_REASONING,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 17, "b": 25}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]  # fmt: skip
    reply = client(server).chat.completions.create(
        model="local-dsa", messages=messages, tools=[ADD_TOOL], extra_body={"thinking": {"type": "enabled"}}
    )
    msg = reply.choices[0].message
    assert msg.content == ADD_ANSWER
    assert msg.model_extra["reasoning_content"] == ADD_FINAL_REASONING
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_openai_client_plain_answer_in_chat_mode(server: ChatServer) -> None:
    stream = client(server).chat.completions.create(
        model="local-dsa", stream=True, tools=[ADD_TOOL],
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": HELLO_QUESTION}],
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == HELLO_ANSWER


async def test_agentkit_remote_backend_drives_the_agent_loop_through_the_server(server: ChatServer) -> None:
    async with RemoteBackend("vllm", "local-dsa", base_url=server.base_url, api_key="sk-test") as remote:
        agent = Agent(remote, [add], system_prompt=SYSTEM, thinking=True)
        result = await agent.run(ADD_QUESTION)
    assert result.status == "completed", result.error
    assert result.output == ADD_ANSWER
    assert result.tool_calls == 1 and result.tool_errors == 0
    assert result.messages[2].reasoning_content == ADD_REASONING
    assert result.usage.prompt_tokens > 0 and result.usage.requests == 2


def test_models_endpoint_and_api_key(server: ChatServer) -> None:
    assert [m.id for m in client(server).models.list()] == ["local-dsa"]
    bad = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.chat.completions.create(model="local-dsa", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "local-dsa", "messages": []}, 400, "messages"),
        ({"model": "local-dsa", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
        ({"model": "local-dsa", "messages": [{"role": "user", "content": "x"}], "temperature": 7}, 400, "temperature"),
        ({"model": "other", "messages": [{"role": "user", "content": "x"}]}, 404, "does not exist"),
        ({"model": "local-dsa", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, 400, "tool_call_id"),
        ({"model": "local-dsa", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}, 400, "must end"),
    ],
)  # fmt: skip
def test_invalid_requests_get_openai_style_errors(
    server: ChatServer, body: dict, status: int, needle: str
) -> None:
    r = httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers={"Authorization": "Bearer sk-test"}
    )
    assert r.status_code == status
    error = r.json()["error"]
    assert needle in error["message"] and error["type"]
    assert set(error) == {"message", "type", "param", "code"}


def test_not_json_is_a_400(server: ChatServer) -> None:
    r = httpx.post(
        f"{server.base_url}/chat/completions", content=b"{nope", headers={"Authorization": "Bearer sk-test"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


async def test_a_full_queue_answers_429_and_the_rest_complete(memorised_checkpoint: Path) -> None:
    backend = LocalDSABackend(memorised_checkpoint, max_tokens=60, max_batch=1)
    with ChatServer(backend, port=0, limits=ServerLimits(max_concurrent=1, max_queue=1)) as srv:
        body = {
            "model": "local-dsa",
            "messages": [{"role": "user", "content": HELLO_QUESTION}],
            "stream": True,
        }
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=60) as http:
            results = await asyncio.gather(*[http.post("/chat/completions", json=body) for _ in range(6)])
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 2 and 429 in codes, codes
    busy = next(r for r in results if r.status_code == 429)
    assert busy.headers["retry-after"] == "1" and busy.json()["error"]["code"] == "rate_limit_exceeded"
    for r in results:
        if r.status_code == 200:
            assert r.text.rstrip().endswith("data: [DONE]")


async def test_a_client_that_disconnects_frees_its_slot(memorised_checkpoint: Path) -> None:
    backend = LocalDSABackend(memorised_checkpoint, max_tokens=100_000, max_batch=1, context_len=2048)
    with ChatServer(backend, port=0, limits=ServerLimits(max_concurrent=1, max_queue=0)) as srv:
        body = {"model": "local-dsa", "messages": [{"role": "user", "content": "ramble"}], "stream": True,
                "temperature": 1.0, "seed": 1}  # fmt: skip
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=60) as http:
            async with http.stream("POST", "/chat/completions", json=body) as r:
                assert r.status_code == 200
                async for _ in r.aiter_bytes():
                    break  # hang up after the first bytes
            assert await eventually(lambda: srv.app.in_flight == 0)
            assert await eventually(lambda: backend.engine.running == 0)  # the generation was cancelled
            ok = await http.post("/chat/completions", json={**body, "stream": False, "max_tokens": 5})
            assert ok.status_code == 200


async def test_serve_proxies_a_remote_provider(serve) -> None:  # noqa: ANN001 - the project's scripted-server fixture
    upstream = serve([Reply(reasoning="Thinking upstream.", content="Hi from upstream.")])
    remote = RemoteBackend("vllm", "upstream-model", base_url=upstream.base_url)
    with ChatServer(remote, port=0) as srv:
        async with RemoteBackend("vllm", "upstream-model", base_url=srv.base_url) as client_backend:
            result = await Agent(client_backend, thinking=True).run("hello")
    assert result.output == "Hi from upstream."
    assert result.messages[-1].reasoning_content == "Thinking upstream."


def test_agentkit_serve_command_starts_answers_and_shuts_down(
    random_checkpoint: Path, tmp_path: Path
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentkit.app.cli", "serve", "--provider", "local", "--checkpoint", str(random_checkpoint),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                models = httpx.get(f"{url}/models").json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stdout.read() if proc.stdout else ""
                )
                time.sleep(0.2)
        assert models["data"][0]["id"] == "local-dsa"
        reply = openai.OpenAI(base_url=url, api_key="none").chat.completions.create(
            model="local-dsa", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
        assert reply.usage.completion_tokens <= 5
    finally:
        proc.send_signal(2)  # SIGINT: graceful shutdown
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Shutting down" in out or "Finished server process" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_shutdown_lets_an_in_flight_stream_finish(memorised_checkpoint: Path) -> None:
    backend = LocalDSABackend(memorised_checkpoint, max_tokens=150, max_batch=1)
    srv = ChatServer(backend, port=0).start()
    body: dict[str, Any] = {"model": "local-dsa", "stream": True, "max_tokens": 150, "temperature": 1.0,
                            "messages": [{"role": "user", "content": "keep talking"}]}  # fmt: skip

    async def stream(http: httpx.AsyncClient, seed: int, stop_after: int | None = None) -> tuple[list[str], int]:
        lines: list[str] = []
        stopping, at_stop = None, 0
        async with http.stream("POST", "/chat/completions", json={**body, "seed": seed}) as r:
            async for line in r.aiter_lines():
                lines.append(line)
                if stop_after is not None and stopping is None and len(lines) > stop_after:
                    stopping = asyncio.create_task(asyncio.to_thread(srv.stop))  # shut down mid-stream
                    at_stop = len(lines)
        if stop_after is not None:
            assert stopping is not None
            await stopping
        return lines, at_stop

    async with httpx.AsyncClient(base_url=srv.base_url, timeout=60) as http:
        # a seed whose sampled stream is long (where a sample ends depends on the CPU's float rounding)
        for seed in range(40):
            full, _ = await stream(http, seed)
            if len(full) >= 40:
                break
        assert len(full) >= 40, "no seed gave a long stream"
        lines, at_stop = await stream(http, seed, stop_after=4)
    assert len(lines) == len(full) > at_stop + 30  # the shutdown began long before the stream ended, and cut nothing
    assert lines[-2] == "data: [DONE]" or lines[-1] == "data: [DONE]"  # and the stream was completed, not cut
    assert backend.engine._closed  # and the backend was closed after it
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(httpx.TransportError):  # and it no longer accepts connections
            await http.get(f"{srv.base_url}/models")


@pytest.mark.parametrize(
    ("extra", "thinking"),
    [
        ({}, None),
        ({"thinking": {"type": "enabled"}}, True),
        ({"thinking": {"type": "disabled"}}, False),
        ({"chat_template_kwargs": {"enable_thinking": True}}, True),
        ({"chat_template_kwargs": {"thinking": False}}, False),
        ({"reasoning_effort": "high"}, True),
        ({"reasoning_effort": "none"}, False),
    ],
)
def test_every_provider_style_thinking_switch_is_understood(extra: dict, thinking: bool | None) -> None:
    body = ChatBody.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra})
    assert to_chat_request(body).thinking is thinking


def test_wire_messages_become_agentkit_messages() -> None:
    body = ChatBody.model_validate({"model": "m", "seed": 7, "attention": "dense", "beams": 3, "max_completion_tokens": 9, "messages": [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "reasoning_content": "r",
         "tool_calls": [{"id": "c", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}]},
        {"role": "tool", "tool_call_id": "c", "content": "1"},
    ]})  # fmt: skip
    request = to_chat_request(body)
    system, user, assistant, tool_msg = request.messages
    assert isinstance(system, SystemMessage) and system.content == "rules"
    assert isinstance(user, UserMessage) and user.content == "ab"
    assert isinstance(assistant, AssistantMessage) and assistant.reasoning_content == "r"
    assert assistant.tool_calls[0].parsed_arguments() == {"a": 1}
    assert (
        isinstance(tool_msg, ToolMessage) and tool_msg.name == "add"
    )  # the name comes from the call it answers
    assert request.extra == {"seed": 7, "attention": "dense", "beams": 3} and request.max_tokens == 9


def test_a_prompt_longer_than_the_context_is_a_400(random_checkpoint: Path) -> None:
    backend = LocalDSABackend(random_checkpoint, context_len=32)
    with ChatServer(backend, port=0) as srv:
        body = {"model": "local-dsa", "messages": [{"role": "user", "content": "many words " * 40}]}
        r = httpx.post(f"{srv.base_url}/chat/completions", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded" and "32" in r.json()["error"]["message"]


def test_serve_with_a_missing_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    """A wrong --checkpoint is a configuration error: exit 2 and a message that names the path and the fix."""
    missing = tmp_path / "no-such-checkpoint"
    proc = subprocess.run([sys.executable, "-m", "agentkit.app.cli", "serve", "--provider", "local", "--checkpoint",
                           str(missing), "--port", "1"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr and "train one" in proc.stderr


def test_serve_runs_the_shipped_model_as_it_was_trained() -> None:
    """Without switches, `agentkit serve --provider local` thinks, searches beams and caps replies as the manifest
    says the model was trained; a client that sends no thinking switch then gets the model that answers."""
    from agentkit.app.cli import build_parser
    from agentkit.backends.cli import make_backend
    from agentkit.backends.local.backend import SHIPPED_CHECKPOINT, agent_settings

    trained = agent_settings(Path(SHIPPED_CHECKPOINT))
    backend = make_backend(build_parser().parse_args(["serve", "--provider", "local"]))
    assert (backend.thinking, backend.beams, backend.max_tokens) == (trained["thinking"], trained["beams"], trained["max_tokens"])
    args = ["serve", "--provider", "local", "--no-thinking", "--beams", "1", "--max-tokens", "64"]
    backend = make_backend(build_parser().parse_args(args))
    assert (backend.thinking, backend.beams, backend.max_tokens) == (False, 1, 64)
