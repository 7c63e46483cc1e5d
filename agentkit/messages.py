"""The conversation model and the one place that decides what goes on the wire.

A transcript keeps everything the model produced, reasoning included (logs, training data, replay). Providers differ in
which prior reasoning they want back: DeepSeek V3.2 returns HTTP 400 when the current turn's reasoning is missing, V4
wants the reasoning of every tool-using turn forever, OpenAI-style servers want none. Those rules live in `WirePolicy`
and are applied by `to_wire` only, never ad hoc in a backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SystemMessage(_Msg):
    role: Literal["system"] = "system"
    content: str


class UserMessage(_Msg):
    role: Literal["user"] = "user"
    content: str


class DeveloperMessage(UserMessage):
    """OpenAI's `developer` role (instructions from the application, below the system prompt). It counts as a user
    turn everywhere (reasoning rules, the local chat template); `to_wire` sends it as the provider's
    `WirePolicy.developer_role`: "developer" where the server knows the role, "user" where it has none (DeepSeek
    answers 400 "unknown variant `developer`")."""

    role: Literal["developer"] = "developer"  # type: ignore[assignment]


class ToolCall(_Msg):
    """A call as the model produced it. `arguments` stays the raw JSON text; it is parsed (and validated) on use."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; raises `json.JSONDecodeError` on malformed text."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


class AssistantMessage(_Msg):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ToolMessage(_Msg):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    name: str
    content: str
    is_error: bool = False


Message = Annotated[
    SystemMessage | UserMessage | DeveloperMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
"""Any message of a transcript; parse JSON with `parse_messages`."""

_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def parse_messages(data: str | bytes | list[dict[str, Any]]) -> list[Message]:
    """Load a transcript from JSON text or a list of dicts (as written by `dump_messages`)."""
    if isinstance(data, str | bytes):
        return _MESSAGES.validate_json(data)
    return _MESSAGES.validate_python(data)


def dump_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The transcript as plain JSON-ready dicts, nothing dropped."""
    return [m.model_dump(mode="json") for m in messages]


# --------------------------------------------------------------------------------------------------------------------
# Wire policies


class ReasoningReplay(StrEnum):
    """Which earlier `reasoning_content` a provider wants back in the next request."""

    CURRENT_TURN = "current_turn"
    """DeepSeek V3.2 thinking mode: assistant messages after the last user message (the tool sub-turns of the current
    turn) carry their reasoning; reasoning of earlier user turns is dropped (the server ignores it anyway)."""

    TOOL_TURNS = "tool_turns"
    """DeepSeek V4: every assistant message of a turn that called a tool carries its reasoning in all later requests,
    after later user messages too; reasoning of tool-free turns is dropped."""

    NEVER = "never"
    """R1-style and plain OpenAI: prior reasoning is never sent (R1 answered 400 when it was)."""

    ALL = "all"
    """Send every recorded reasoning back (servers whose template decides for itself)."""


@dataclass(frozen=True)
class WirePolicy:
    """How a provider names reasoning and which of it goes back.

    `reasoning_field` is the request-side name (`reasoning_content` for DeepSeek/vLLM/SGLang, `reasoning` for
    OpenRouter, `thinking` for Ollama). `echo_empty` sends "" for a required reasoning that was never produced, because
    DeepSeek checks for the field's presence on tool-call messages, not its content. `developer_role` is the role a
    `DeveloperMessage` is sent as.
    """

    replay: ReasoningReplay = ReasoningReplay.NEVER
    reasoning_field: str = "reasoning_content"
    echo_empty: bool = True
    developer_role: Literal["user", "system", "developer"] = "user"


DEEPSEEK_V32 = WirePolicy(ReasoningReplay.CURRENT_TURN)
DEEPSEEK_V4 = WirePolicy(ReasoningReplay.TOOL_TURNS)
NO_REASONING = WirePolicy(ReasoningReplay.NEVER)
OPENAI = WirePolicy(ReasoningReplay.NEVER, developer_role="developer")


def _turn_index(messages: list[Message]) -> list[int]:
    """For each message, the index of the user turn it belongs to (-1 before the first user message)."""
    turn, out = -1, []
    for m in messages:
        if isinstance(m, UserMessage):
            turn += 1
        out.append(turn)
    return out


def replay_mask(messages: list[Message], replay: ReasoningReplay) -> list[bool]:
    """For each message, whether its reasoning must travel (meaningful for assistant messages only)."""
    n = len(messages)
    if replay is ReasoningReplay.NEVER:
        return [False] * n
    if replay is ReasoningReplay.ALL:
        return [isinstance(m, AssistantMessage) for m in messages]
    turns = _turn_index(messages)
    if replay is ReasoningReplay.CURRENT_TURN:
        last = turns[-1] if turns else -1
        return [isinstance(m, AssistantMessage) and t == last for m, t in zip(messages, turns, strict=True)]
    tool_turns = {
        t for m, t in zip(messages, turns, strict=True) if isinstance(m, AssistantMessage) and m.tool_calls
    }
    return [isinstance(m, AssistantMessage) and t in tool_turns for m, t in zip(messages, turns, strict=True)]


def to_wire(messages: list[Message], policy: WirePolicy = NO_REASONING) -> list[dict[str, Any]]:
    """Render a transcript as OpenAI-compatible `messages`, applying the provider's reasoning rule."""
    keep = replay_mask(messages, policy.replay)
    wire: list[dict[str, Any]] = []
    for m, keep_reasoning in zip(messages, keep, strict=True):
        if isinstance(m, DeveloperMessage):
            wire.append({"role": policy.developer_role, "content": m.content})
        elif isinstance(m, SystemMessage | UserMessage):
            wire.append({"role": m.role, "content": m.content})
        elif isinstance(m, ToolMessage):
            wire.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            out: dict[str, Any] = {"role": "assistant", "content": m.content if m.content is not None else ""}
            if m.tool_calls:
                out["content"] = m.content or None
                out["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in m.tool_calls
                ]
            if keep_reasoning and (m.reasoning_content is not None or policy.echo_empty):
                out[policy.reasoning_field] = m.reasoning_content or ""
            wire.append(out)
    return wire
