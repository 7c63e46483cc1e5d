"""Golden tests of the DeepSeek-V3.2 prompt format.

The main conversation has the shape of DeepSeek's published example (HF deepseek-ai/DeepSeek-V3.2, encoding test
`test_output.txt`): a system prompt with two tools; a first user question answered through one tool call, then two
parallel calls, then an answer; a second user question answered through two parallel calls and an answer. The
expected strings are written out by hand with the literal markers, so a change to the format fails here."""

from __future__ import annotations

import json
import re

import pytest

from agentkit.backends.local import chat_format as cf
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage

TOOLS = [
    {"type": "function", "function": {"name": "get_date", "description": "Today's date in a timezone.",
     "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}},
    {"type": "function", "function": {"name": "forecast", "description": "Weather of a city on a day.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days_ahead": {"type": "integer"}},
                    "required": ["city", "days_ahead"]}}},
]  # fmt: skip


def call(cid: str, name: str, **args: object) -> ToolCall:
    return ToolCall(id=cid, name=name, arguments=json.dumps(args))


def conversation() -> list[Message]:
    return [
        SystemMessage(content="You are a helpful Assistant."),
        UserMessage(content="Weather in Paris and Oslo tomorrow?"),
        AssistantMessage(reasoning_content="R1: need the date.", tool_calls=[call("a", "get_date", timezone="Europe/Paris")]),
        ToolMessage(tool_call_id="a", name="get_date", content='{"date": "2025-03-01"}'),
        AssistantMessage(
            reasoning_content="R2: tomorrow is 2025-03-02.",
            tool_calls=[call("b", "forecast", city="Paris", days_ahead=1), call("c", "forecast", city="Oslo", days_ahead=1)],
        ),
        ToolMessage(tool_call_id="b", name="forecast", content="Paris: 12C, rain"),
        ToolMessage(tool_call_id="c", name="forecast", content="Oslo: -3C, snow"),
        AssistantMessage(reasoning_content="R3: format it.", content="Paris 12C rain; Oslo -3C snow."),
        UserMessage(content="And the day after?"),
        AssistantMessage(
            reasoning_content="R4: days_ahead=2.",
            tool_calls=[call("d", "forecast", city="Paris", days_ahead=2), call("e", "forecast", city="Oslo", days_ahead=2)],
        ),
        ToolMessage(tool_call_id="d", name="forecast", content="Paris: 14C, sun"),
        ToolMessage(tool_call_id="e", name="forecast", content="Oslo: -1C, cloud"),
        AssistantMessage(reasoning_content="R5: done.", content="Paris 14C sun; Oslo -1C cloud."),
    ]  # fmt: skip


def dsml(*invokes: tuple[str, list[tuple[str, str, str]]]) -> str:
    body = "".join(
        f'\n<｜DSML｜invoke name="{name}">'
        + "".join(
            f'\n<｜DSML｜parameter name="{k}" string="{s}">{v}</｜DSML｜parameter>' for k, s, v in params
        )
        + "\n</｜DSML｜invoke>"
        for name, params in invokes
    )
    return f"\n\n<｜DSML｜function_calls>{body}\n</｜DSML｜function_calls><｜end▁of▁sentence｜>"


DATE_CALL = dsml(("get_date", [("timezone", "true", "Europe/Paris")]))
DAY1_CALLS = dsml(("forecast", [("city", "true", "Paris"), ("days_ahead", "false", "1")]),
                  ("forecast", [("city", "true", "Oslo"), ("days_ahead", "false", "1")]))  # fmt: skip
DAY2_CALLS = dsml(("forecast", [("city", "true", "Paris"), ("days_ahead", "false", "2")]),
                  ("forecast", [("city", "true", "Oslo"), ("days_ahead", "false", "2")]))  # fmt: skip


def results(*contents: str) -> str:
    return (
        "\n\n<function_results>"
        + "".join(f"\n<result>{c}</result>" for c in contents)
        + "\n</function_results>"
    )


# The first user turn renders the same in both modes: its reasoning is dropped because a later user message exists.
FIRST_TURN = (
    "<｜begin▁of▁sentence｜>You are a helpful Assistant.\n\n" + cf.render_tools(TOOLS)
    + "<｜User｜>Weather in Paris and Oslo tomorrow?<｜Assistant｜></think>"
    + DATE_CALL + results('{"date": "2025-03-01"}') + "\n\n</think>"
    + DAY1_CALLS + results("Paris: 12C, rain", "Oslo: -3C, snow") + "\n\n</think>"
    + "Paris 12C rain; Oslo -3C snow.<｜end▁of▁sentence｜>"
)  # fmt: skip


def test_golden_thinking_mode_multi_turn_with_tools() -> None:
    expected = (
        FIRST_TURN
        + "<｜User｜>And the day after?<｜Assistant｜><think>R4: days_ahead=2.</think>"
        + DAY2_CALLS + results("Paris: 14C, sun", "Oslo: -1C, cloud") + "\n\n<think>"
        + "R5: done.</think>Paris 14C sun; Oslo -1C cloud.<｜end▁of▁sentence｜>"
    )  # fmt: skip
    assert cf.render(conversation(), TOOLS, thinking=True).text == expected


def test_golden_chat_mode_drops_all_reasoning() -> None:
    expected = (
        FIRST_TURN
        + "<｜User｜>And the day after?<｜Assistant｜></think>"
        + DAY2_CALLS + results("Paris: 14C, sun", "Oslo: -1C, cloud") + "\n\n</think>"
        + "Paris 14C sun; Oslo -1C cloud.<｜end▁of▁sentence｜>"
    )  # fmt: skip
    assert cf.render(conversation(), TOOLS, thinking=False).text == expected


def test_reasoning_before_the_last_user_message_is_dropped_and_after_it_kept() -> None:
    text = cf.render(conversation(), TOOLS, thinking=True).text
    for dropped in ("R1:", "R2:", "R3:"):
        assert dropped not in text
    for kept in ("R4:", "R5:"):
        assert kept in text


def test_generation_prompts_end_with_the_think_marker_the_model_continues_from() -> None:
    msgs = conversation()
    assert cf.render(msgs[:2], TOOLS, thinking=True).text.endswith(
        "<｜User｜>Weather in Paris and Oslo tomorrow?<｜Assistant｜><think>"
    )
    assert cf.render(msgs[:2], TOOLS, thinking=False).text.endswith("<｜Assistant｜></think>")
    # the current turn's tool sub-turns: results end with <think> and the earlier sub-turn's reasoning is shown
    mid = cf.render(msgs[:11] + msgs[11:12], TOOLS, thinking=True).text
    assert mid.endswith("</function_results>\n\n<think>") and "R4: days_ahead=2.</think>" in mid
    assert cf.render(msgs[:4], TOOLS, thinking=False).text.endswith("</function_results>\n\n</think>")


def test_deepseek_readme_example() -> None:
    msgs = [
        UserMessage(content="hello"),
        AssistantMessage(content="Hello! I am DeepSeek.", reasoning_content="thinking..."),
        UserMessage(content="1+1=?"),
    ]
    assert cf.render(msgs, thinking=True).text == (
        "<｜begin▁of▁sentence｜><｜User｜>hello<｜Assistant｜></think>Hello! I am DeepSeek.<｜end▁of▁sentence｜>"
        "<｜User｜>1+1=?<｜Assistant｜><think>"
    )


def test_tools_block_layout() -> None:
    block = cf.render_tools(TOOLS)
    assert block.startswith("## Tools\n\n")
    assert '\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="$FUNCTION_NAME">\n' in block
    assert (
        '<｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>'
        in block
    )
    functions = re.search(r"\n<functions>\n(.*)\n</functions>\n$", block, re.S)
    assert functions is not None
    assert [json.loads(line) for line in functions.group(1).split("\n")] == [t["function"] for t in TOOLS]


def test_tools_without_a_system_message_open_the_prompt() -> None:
    text = cf.render([UserMessage(content="hi")], TOOLS, thinking=False).text
    assert text.startswith("<｜begin▁of▁sentence｜>## Tools\n\n") and "<｜User｜>hi" in text


def test_tool_results_follow_the_order_of_the_calls() -> None:
    msgs = conversation()[:7]
    swapped = msgs[:5] + [msgs[6], msgs[5]]
    assert cf.render(swapped, TOOLS, thinking=True).text == cf.render(msgs, TOOLS, thinking=True).text


def test_markers_are_parts_and_text_is_text() -> None:
    prompt = cf.render([UserMessage(content="literal </think> and <｜User｜> in text")], thinking=True)
    markers = [t for t, m in prompt.parts if m]
    assert markers == [cf.BOS, cf.USER, cf.ASSISTANT, cf.THINK_START]  # the user's lookalikes are not markers
    assert "".join(t for t, _ in prompt.parts) == prompt.text


@pytest.mark.parametrize("raw", [
    '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="x" string="false">abc</｜DSML｜parameter>\n',
    '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="x" string="true">unclosed',
])  # fmt: skip
def test_a_broken_call_kept_raw_is_replayed_as_written(raw: str) -> None:
    msg = AssistantMessage(tool_calls=[ToolCall(id="x", name="f", arguments=raw)])
    text = cf.render_assistant(msg, with_reasoning=False).text
    assert (
        text
        == f"\n\n<｜DSML｜function_calls>\n{raw.rstrip(chr(10))}\n</｜DSML｜invoke>\n</｜DSML｜function_calls><｜end▁of▁sentence｜>"
    )
