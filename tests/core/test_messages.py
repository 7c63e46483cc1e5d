"""to_wire: each provider's reasoning rule, pinned on multi-turn transcripts (tool sub-turns, a new user turn, tools again)."""

from __future__ import annotations

import json

from agentkit.messages import (
    DEEPSEEK_V4,
    DEEPSEEK_V32,
    NO_REASONING,
    AssistantMessage,
    ReasoningReplay,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    WirePolicy,
    dump_messages,
    parse_messages,
    to_wire,
)


def call(i: str) -> ToolCall:
    return ToolCall(id=f"c{i}", name="lookup", arguments=json.dumps({"q": i}))


def transcript() -> list:
    """Turn 1 uses tools twice; turn 2 is tool-free; turn 3 is the current turn, mid tool use."""
    return [
        SystemMessage(content="sys"),
        UserMessage(content="q1"),  # 1
        AssistantMessage(reasoning_content="r1a", tool_calls=[call("1")]),  # 2
        ToolMessage(tool_call_id="c1", name="lookup", content="res1"),
        AssistantMessage(reasoning_content="r1b", tool_calls=[call("2")]),  # 4
        ToolMessage(tool_call_id="c2", name="lookup", content="res2"),
        AssistantMessage(reasoning_content="r1c", content="answer1"),  # 6
        UserMessage(content="q2"),  # 7
        AssistantMessage(reasoning_content="r2", content="answer2"),  # 8
        UserMessage(content="q3"),  # 9
        AssistantMessage(reasoning_content="r3a", tool_calls=[call("3"), call("4")]),  # 10
        ToolMessage(tool_call_id="c3", name="lookup", content="res3"),
        ToolMessage(tool_call_id="c4", name="lookup", content="res4"),
        AssistantMessage(reasoning_content=None, tool_calls=[call("5")]),  # 13: a sub-turn without reasoning text
        ToolMessage(tool_call_id="c5", name="lookup", content="res5"),
    ]


def with_reasoning(wire: list[dict], field: str = "reasoning_content") -> dict[int, str]:
    return {i: m[field] for i, m in enumerate(wire) if field in m}


def test_v32_sends_only_current_turn_reasoning() -> None:
    wire = to_wire(transcript(), DEEPSEEK_V32)
    # Turns 1 and 2 lose their reasoning; the current turn's sub-turns keep it, "" where none was produced.
    assert with_reasoning(wire) == {10: "r3a", 13: ""}


def test_v4_keeps_reasoning_of_every_tool_turn_forever() -> None:
    wire = to_wire(transcript(), DEEPSEEK_V4)
    # Turn 1 used tools: all three of its assistant messages (the final answer included); turn 2 had no tools.
    assert with_reasoning(wire) == {2: "r1a", 4: "r1b", 6: "r1c", 10: "r3a", 13: ""}


def test_r1_style_never_sends_reasoning() -> None:
    wire = to_wire(transcript(), NO_REASONING)
    assert with_reasoning(wire) == {}
    assert all("reasoning" not in m and "thinking" not in m for m in wire)


def test_field_name_mapping_and_no_empty_echo() -> None:
    openrouter = WirePolicy(ReasoningReplay.CURRENT_TURN, reasoning_field="reasoning")
    assert with_reasoning(to_wire(transcript(), openrouter), "reasoning") == {10: "r3a", 13: ""}
    ollama = WirePolicy(ReasoningReplay.CURRENT_TURN, reasoning_field="thinking", echo_empty=False)
    assert with_reasoning(to_wire(transcript(), ollama), "thinking") == {10: "r3a"}
    send_all = WirePolicy(ReasoningReplay.ALL)
    assert set(with_reasoning(to_wire(transcript(), send_all))) == {2, 4, 6, 8, 10, 13}


def test_wire_shape_is_openai_compatible() -> None:
    wire = to_wire(transcript(), DEEPSEEK_V32)
    assert wire[0] == {"role": "system", "content": "sys"}
    assert wire[2]["content"] is None and wire[2]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "1"}'},
    }
    assert wire[3] == {"role": "tool", "tool_call_id": "c1", "content": "res1"}
    assert wire[8] == {"role": "assistant", "content": "answer2"}  # a plain answer keeps its content, no tool_calls key


def test_current_turn_before_any_tool_result() -> None:
    # The first request of a turn has no assistant message after the last user: nothing to replay.
    msgs = transcript()[:10]
    assert with_reasoning(to_wire(msgs, DEEPSEEK_V32)) == {}
    assert with_reasoning(to_wire(msgs, DEEPSEEK_V4)) == {2: "r1a", 4: "r1b", 6: "r1c"}


def test_transcript_round_trips_through_json_with_reasoning() -> None:
    msgs = transcript()
    again = parse_messages(json.dumps(dump_messages(msgs)))
    assert again == msgs
    assert again[2].reasoning_content == "r1a"
