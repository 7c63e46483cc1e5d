"""What `Agent.stream` yields: plain typed data, in the order things happen.

Per turn: `TurnStart`, then `ReasoningDelta` / `TextDelta` / `ToolCallDelta` as the model streams, then
`AssistantTurn` with the assembled message, then one `ToolResult` per call (in completion order), and finally one
`Final` carrying the `RunResult`. `TurnRetry` says a cut stream was retried before any tool call arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agentkit.backend import Usage
from agentkit.messages import AssistantMessage, Message, ToolCall, dump_messages
from agentkit.output import dump_output

if TYPE_CHECKING:
    pass

RunStatus = Literal["completed", "max_turns", "deadline", "cancelled", "error", "pending_approval"]


@dataclass
class RunResult:
    """Everything a run produced, also when it stopped early (`status` says why)."""

    status: RunStatus
    output: Any  # the final text; an instance of `output_type` when the agent has one
    messages: list[Message]
    usage: Usage
    cost: float
    turns: int
    tool_calls: int
    wall_time: float
    error: str | None = None
    error_type: str | None = None
    tool_errors: int = 0
    attempts: int = 0
    pending: list[ToolCall] = field(default_factory=list)  # calls waiting for approval (status "pending_approval")

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "output": dump_output(self.output),
            "error": self.error,
            "error_type": self.error_type,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "tool_errors": self.tool_errors,
            "attempts": self.attempts,
            "pending": [c.model_dump() for c in self.pending],
            "usage": self.usage.to_dict(),
            "cost": self.cost,
            "wall_time": self.wall_time,
            "messages": dump_messages(self.messages),
        }


@dataclass(frozen=True)
class TurnStart:
    turn: int


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True)
class TurnRetry:
    """The loop re-requests a turn whose response was cut before any tool call arrived: `attempt` is the number of
    the coming request within the turn's budget, after a pause of `wait` seconds."""

    turn: int
    reason: str
    attempt: int = 0
    wait: float = 0.0


@dataclass(frozen=True)
class AssistantTurn:
    turn: int
    message: AssistantMessage
    usage: Usage | None = None


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    content: str
    is_error: bool
    duration: float


@dataclass(frozen=True)
class Final:
    result: RunResult = field(repr=False)


Event = (
    TurnStart | ReasoningDelta | TextDelta | ToolCallDelta | TurnRetry | AssistantTurn | ToolResult | Final
)
