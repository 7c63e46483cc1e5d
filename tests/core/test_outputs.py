"""Typed outputs against the scripted DeepSeek server in thinking mode (V4 rule enforced, no forced tool_choice)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from pydantic import BaseModel, Field

from agentkit import Agent, ConfigurationError, ToolMessage, UserMessage, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply


class City(BaseModel):
    name: str
    population: int = Field(ge=0)


@dataclass
class Point:
    x: float
    y: float


def backend(srv) -> RemoteBackend:
    return RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="test")


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city} has 700000 people"


async def test_a_wrong_answer_goes_back_with_the_errors_then_the_model_fixes_it(serve) -> None:
    srv = serve([
        Reply(reasoning="look it up", tool_calls=[("lookup", '{"city": "Oslo"}')]),
        Reply(reasoning="answer", tool_calls=[("final_answer", '{"name": "Oslo", "population": -5}')]),
        Reply(reasoning="fix it", tool_calls=[("final_answer", '{"name": "Oslo", "population": 700000}')]),
    ], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), [lookup], output_type=City).run("How big is Oslo?")
    assert result.status == "completed", result.error
    assert result.output == City(name="Oslo", population=700000)
    assert result.to_dict()["output"] == {"name": "Oslo", "population": 700000}
    body = srv.requests[0]
    assert "tool_choice" not in body or body["tool_choice"] in (None, "auto")
    final = next(t for t in body["tools"] if t["function"]["name"] == "final_answer")
    assert final["function"]["parameters"]["properties"]["population"]["minimum"] == 0
    assert "final_answer" in body["messages"][0]["content"]  # the instruction rides in the system prompt
    errors = [m for m in result.messages if isinstance(m, ToolMessage) and m.is_error]
    assert len(errors) == 1 and "population" in errors[0].content and "greater than or equal to 0" in errors[0].content
    assert isinstance(result.messages[-1], ToolMessage) and result.messages[-1].content == "Final answer accepted."


async def test_a_plain_text_answer_is_corrected_then_json_in_text_is_accepted(serve) -> None:
    srv = serve([
        Reply(reasoning="just say it", content="It is at three, four."),
        Reply(reasoning="as JSON then", content='```json\n{"x": 3, "y": 4}\n```'),
    ], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), output_type=Point).run("where?")
    assert result.status == "completed" and result.output == Point(3.0, 4.0)
    correction = [m for m in result.messages if isinstance(m, UserMessage)][-1]
    assert "final_answer" in correction.content and srv.requests[1]["messages"][-1]["role"] == "user"


async def test_json_schema_and_non_object_types_are_wrapped(serve) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    srv = serve([Reply(reasoning="r", tool_calls=[("final_answer", '{"ok": "yes"}')]),
                 Reply(reasoning="r", tool_calls=[("final_answer", '{"ok": true}')])], enforce="deepseek-v4")  # fmt: skip
    result = await Agent(backend(srv), output_type=schema).run("ok?")
    assert result.output == {"ok": True}
    srv2 = serve([Reply(reasoning="r", tool_calls=[("final_answer", '{"result": [1, 2, 3]}')])], enforce="deepseek-v4")
    result = await Agent(backend(srv2), output_type=list[int]).run("numbers")
    assert result.output == [1, 2, 3]
    assert srv2.requests[0]["tools"][-1]["function"]["parameters"]["required"] == ["result"]


async def test_bounded_retries_then_a_clear_error(serve) -> None:
    srv = serve(lambda body: Reply(reasoning="again", tool_calls=[("final_answer", '{"name": "X"}')]), enforce="deepseek-v4")
    result = await Agent(backend(srv), output_type=City, output_retries=2).run("?")
    assert result.status == "error" and result.error_type == "OutputValidationError"
    assert "3 tries" in (result.error or "") and "population" in (result.error or "")
    assert len(srv.requests) == 3 and result.output is None


def test_configuration_errors() -> None:
    class Dummy:
        model = "m"

        async def stream(self, request):  # pragma: no cover
            yield

    @tool
    def final_answer(x: int) -> int:
        """Clash."""
        return x

    with pytest.raises(ConfigurationError):
        Agent(Dummy(), [final_answer], output_type=City)
    with pytest.raises(ConfigurationError):
        Agent(Dummy(), output_type={"type": "nonsense"})
    assert json.dumps(Agent(Dummy(), output_type=City).output.tool_spec())  # type: ignore[union-attr]
