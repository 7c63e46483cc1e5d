"""`agentkit serve` and tool calls the model botched, over real HTTP on 127.0.0.1 with the official `openai` client.

The backend is the local model's real output path without the model: fixed completions, fed in small pieces through
the real `DSMLStreamParser`, so a broken invoke reaches the server exactly as the local backend would deliver it (a
call whose arguments are the raw DSML the model wrote). A remote provider (the scripted server behind a real
`RemoteBackend`) covers arguments that arrive in many fragments.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from agentkit.backend import ChatDelta, ChatRequest, ModelBackend, Usage
from agentkit.backends.botched_calls import EXCERPT_CHARS
from agentkit.backends.local.chat_format import (
    CALLS_END,
    CALLS_START,
    INVOKE_CLOSE,
    INVOKE_OPEN,
    PARAM_CLOSE,
    PARAM_OPEN,
)
from agentkit.backends.local.parser import DSMLStreamParser, parse_completion
from agentkit.backends.remote import RemoteBackend
from agentkit.backends.server import ChatServer
from agentkit.testing.scripted_server import Reply, ServerOptions

MODEL = "dsml-script"
KEY = "sk-serve-test-key-0123456789"
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}


def param(name: str, value: str, string: bool = False) -> str:
    return f'{PARAM_OPEN} name="{name}" string="{"true" if string else "false"}">{value}{PARAM_CLOSE}\n'


def invoke(body: str, tag: str = ' name="add">') -> str:
    return f"{INVOKE_OPEN}{tag}\n{body}{INVOKE_CLOSE}\n"


def calls(*invokes: str) -> str:
    return "I will use the tool.\n\n" + CALLS_START + "\n" + "".join(invokes) + CALLS_END


STOPPED_INSIDE = f'{INVOKE_OPEN} name="add">\n{PARAM_OPEN} name="a" string="false">1'  # generation ended here
VALID = invoke(param("a", "17") + param("b", "25"))
COMPLETIONS = {
    "valid": calls(VALID),
    "duplicate": calls(invoke(param("a", "17") + param("a", "18") + param("b", "25"))),
    "bad tag": calls(invoke(param("a", "17"), tag=' nme="add">')),
    "not json": calls(invoke(param("a", "seventeen") + param("b", "25"))),
    "stopped": calls(STOPPED_INSIDE).removesuffix(CALLS_END),
    "long": calls(invoke(param("a", "[" + "x" * 600) + param("b", "25"))),
    "valid then duplicate": calls(VALID, invoke(param("b", "1") + param("b", "2"), tag=' name="mul">')),
    "duplicate then valid": calls(invoke(param("a", "1") + param("a", "2")), *[VALID] * 20),
    "secret": calls(invoke(param("a", f"api_key={KEY}") + param("b", "25"))),
}


def raw_arguments(key: str, index: int = 0) -> str:
    """What the real parser makes of a completion's call: for a botched one, the raw text the model wrote."""
    message, _ = parse_completion(COMPLETIONS[key], thinking=False)
    return message.tool_calls[index].arguments


def excerpt(raw: str) -> str:
    """How the error quotes the model's text: its first EXCERPT_CHARS characters, repr'd."""
    return repr(raw[:EXCERPT_CHARS])


class DSMLScriptBackend(ModelBackend):
    """A `ModelBackend` that "generates" the completion named by the last user message: its text goes through the
    local model's real streaming parser in 5-character pieces, as decoded tokens would."""

    model = MODEL

    def __init__(self) -> None:
        self.requests = 0
        self.fed: dict[
            str, int
        ] = {}  # characters of each completion fed before its generation ended or was stopped

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.requests += 1
        key = str(request.messages[-1].content)
        text = COMPLETIONS[key]
        parser = DSMLStreamParser(thinking=False)
        self.fed[key] = 0
        for i in range(0, len(text), 5):
            self.fed[key] = min(i + 5, len(text))
            for delta in parser.feed(text[i : i + 5]):
                yield delta
            await asyncio.sleep(0)
        for delta in parser.finish():
            yield delta
        yield ChatDelta(usage=Usage(prompt_tokens=10, completion_tokens=len(text) // 4))


@pytest.fixture(scope="module")
def backend() -> DSMLScriptBackend:
    return DSMLScriptBackend()


@pytest.fixture(scope="module")
def server(backend: DSMLScriptBackend) -> Iterator[ChatServer]:
    with ChatServer(backend, port=0, api_key=KEY) as srv:
        yield srv


def client(server: ChatServer, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=retries)


def ask(server: ChatServer, key: str, *, stream: bool, retries: int = 0):  # noqa: ANN201 - a completion or a stream
    return client(server, retries).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": key}], tools=[ADD_TOOL], stream=stream
    )


def read_stream(stream: openai.Stream) -> tuple[list, openai.APIError]:  # type: ignore[type-arg]
    """The chunks a client saw before the stream raised, and the error it raised."""
    chunks = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            chunks.append(chunk)
    return chunks, err.value


def streamed_arguments(chunks: list) -> dict[int, str]:
    out: dict[int, str] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            out[tc.index] = out.get(tc.index, "") + (tc.function.arguments or "")
    return out


# --------------------------------------------------------------------------------------------------------------------
# Valid calls are unchanged


def test_a_valid_call_round_trips_without_streaming(server: ChatServer) -> None:
    reply = ask(server, "valid", stream=False)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "add" and json.loads(call.function.arguments) == {"a": 17, "b": 25}
    assert reply.choices[0].message.content == "I will use the tool."
    assert reply.choices[0].finish_reason == "tool_calls"


def test_a_valid_call_round_trips_streamed(server: ChatServer) -> None:
    chunks = list(ask(server, "valid", stream=True))
    frags = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(f.function.name, f.function.arguments) for f in frags] == [
        ("add", ""),
        (None, '{"a": 17, "b": 25}'),
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls" and chunks[-1].usage.prompt_tokens == 10


# --------------------------------------------------------------------------------------------------------------------
# Botched calls: an error the client can show, never raw markup in `arguments`


@pytest.mark.parametrize("key", ["duplicate", "not json", "stopped"])
def test_a_botched_call_is_a_502_naming_the_tool_with_an_excerpt(server: ChatServer, key: str) -> None:
    raw = raw_arguments(key)
    assert raw.startswith(INVOKE_OPEN)  # the real parser handed on the raw markup
    with pytest.raises(openai.APIStatusError) as err:
        ask(server, key, stream=False)
    exc = err.value
    assert isinstance(exc, openai.InternalServerError) and exc.status_code == 502
    assert exc.type == "invalid_tool_call" and exc.code == "invalid_tool_call"
    assert "tool 'add'" in exc.message and "could not be read" in exc.message
    assert excerpt(raw) in exc.message
    assert "Retry" in exc.message and "seed" in exc.message and "beams" in exc.message
    assert str(exc).startswith("Error code: 502 - the model wrote a call to tool 'add'")
    assert exc.response.headers["x-should-retry"] == "false"
    assert KEY not in exc.message


def test_an_unreadable_tool_name_is_said_so(server: ChatServer) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        ask(server, "bad tag", stream=False)
    assert "a tool whose name could not be read" in err.value.message
    assert excerpt(raw_arguments("bad tag")) in err.value.message


def test_a_long_botched_call_is_cut_to_an_excerpt(server: ChatServer) -> None:
    raw = raw_arguments("long")
    assert len(raw) > EXCERPT_CHARS
    with pytest.raises(openai.InternalServerError) as err:
        ask(server, "long", stream=False)
    assert excerpt(raw) in err.value.message
    assert f"(the first {EXCERPT_CHARS} of {len(raw)} characters)" in err.value.message
    assert "x" * (EXCERPT_CHARS + 1) not in err.value.message


def test_a_long_botched_call_streamed_is_cut_too(server: ChatServer) -> None:
    raw = raw_arguments("long")
    _, exc = read_stream(ask(server, "long", stream=True))
    assert excerpt(raw) in exc.message and "x" * (EXCERPT_CHARS + 1) not in exc.message
    # it arrived whole, but a stream stops reading once the excerpt is full, so the length is a lower bound
    assert f"(the first {EXCERPT_CHARS} of at least {len(raw)} characters)" in exc.message


def test_the_excerpt_is_redacted(server: ChatServer) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        ask(server, "secret", stream=False)
    assert KEY not in err.value.message and "api_key=***" in err.value.message


def test_the_sdk_does_not_repeat_a_deterministic_generation(
    server: ChatServer, backend: DSMLScriptBackend
) -> None:
    before = backend.requests
    with pytest.raises(openai.InternalServerError):
        ask(server, "duplicate", stream=False, retries=2)  # the SDK would retry a plain 502 twice
    assert backend.requests == before + 1


@pytest.mark.parametrize("key", ["duplicate", "bad tag", "stopped"])
def test_a_botched_call_ends_the_stream_with_an_error_event(server: ChatServer, key: str) -> None:
    chunks, exc = read_stream(ask(server, key, stream=True))
    heads = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [] if tc.id]
    assert len(heads) == 1  # the head ("calling add") went out before the arguments turned out broken
    assert streamed_arguments(chunks) == {0: ""}  # the broken arguments never did
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "I will use the tool."
    assert exc.type == "invalid_tool_call" and exc.code == "invalid_tool_call"
    assert "could not be read" in exc.message and excerpt(raw_arguments(key)) in exc.message
    assert ("tool 'add'" if key != "bad tag" else "a tool whose name could not be read") in exc.message


def test_the_error_event_is_the_last_thing_on_the_wire(server: ChatServer) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "duplicate"}],
        "tools": [ADD_TOOL],
        "stream": True,
    }
    r = httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 200
    assert r.text.endswith("\n\n") and "[DONE]" not in r.text
    events = [json.loads(line.removeprefix("data: ")) for line in r.text.split("\n\n") if line]
    error = events[-1]["error"]
    assert (
        error["type"] == "invalid_tool_call"
        and error["code"] == "invalid_tool_call"
        and error["param"] is None
    )
    calls = [tc for e in events[:-1] for tc in e["choices"][0]["delta"].get("tool_calls") or []]
    assert [tc["function"]["name"] for tc in calls] == ["add"] and calls[0]["function"]["arguments"] == ""


def test_a_valid_call_streams_then_a_botched_one_errors(server: ChatServer) -> None:
    chunks, exc = read_stream(ask(server, "valid then duplicate", stream=True))
    args = streamed_arguments(chunks)
    assert json.loads(args[0]) == {"a": 17, "b": 25} and args[1] == ""
    assert "tool 'mul'" in exc.message and excerpt(raw_arguments("valid then duplicate", 1)) in exc.message


def test_a_botched_call_stops_the_generation(server: ChatServer, backend: DSMLScriptBackend) -> None:
    chunks, exc = read_stream(ask(server, "duplicate then valid", stream=True))
    assert "tool 'add'" in exc.message and excerpt(raw_arguments("duplicate then valid")) in exc.message
    assert streamed_arguments(chunks) == {0: ""}  # the valid calls after it were never sent
    # generation stopped at the next call's head, long before the 20 calls after it were written
    assert backend.fed["duplicate then valid"] < len(COMPLETIONS["duplicate then valid"]) // 4


# --------------------------------------------------------------------------------------------------------------------
# A remote provider: arguments in many fragments


async def test_remote_arguments_in_fragments_still_stream(serve) -> None:  # noqa: ANN001 - the scripted-server fixture
    script = [
        Reply(content="Both.", tool_calls=[("add", '{"a": 17, "b": 25}'), ("mul", '{"x": [1, 2], "y": "}"}')])
    ]
    upstream = serve(script, options=ServerOptions(piece=3, interleave_tool_calls=True))
    with ChatServer(RemoteBackend("vllm", "upstream", base_url=upstream.base_url), port=0) as srv:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0) as ai:
            stream = await ai.chat.completions.create(
                model="upstream", messages=[{"role": "user", "content": "go"}], tools=[ADD_TOOL], stream=True
            )
            chunks = [c async for c in stream]
    args = streamed_arguments(chunks)
    assert json.loads(args[0]) == {"a": 17, "b": 25} and json.loads(args[1]) == {"x": [1, 2], "y": "}"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("arguments", ['{"a": 17, "b":', "a=17, b=25", '{"a": 1} trailing'])
async def test_remote_arguments_that_are_no_json_object_are_an_error(serve, arguments: str) -> None:  # noqa: ANN001
    upstream = serve([Reply(tool_calls=[("add", arguments)])] * 2, options=ServerOptions(piece=4))
    with ChatServer(RemoteBackend("vllm", "upstream", base_url=upstream.base_url), port=0) as srv:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0) as ai:
            create = ai.chat.completions.create
            stream = await create(model="upstream", messages=[{"role": "user", "content": "go"}], stream=True)
            with pytest.raises(openai.APIError) as streamed:
                async for _ in stream:
                    pass
            with pytest.raises(openai.InternalServerError) as whole:
                await create(model="upstream", messages=[{"role": "user", "content": "go"}])
    for exc in (streamed.value, whole.value):
        assert (
            exc.code == "invalid_tool_call" and "tool 'add'" in exc.message and repr(arguments) in exc.message
        )
