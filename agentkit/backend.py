"""The contract between the agent loop and any model: a request in, a stream of deltas out.

The remote API and the local DSA model both implement `ModelBackend`, so the loop has exactly one code path. A delta
carries whatever the provider sent in one chunk; tool calls arrive as fragments keyed by index (id and name on the
first fragment, arguments in pieces) and are assembled by `ResponseAssembler`, shared by every consumer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentkit.messages import AssistantMessage, Message, ToolCall
from agentkit.retry import RetryBudget


@dataclass
class Usage:
    """Token counts of one response or a whole run. `prompt_tokens = cache_hit_tokens + cache_miss_tokens` where the
    provider reports the split; `completion_tokens` includes `reasoning_tokens`. `unreported` counts responses whose
    server sent no usage: their tokens are unknown, not 0, so the counts (and the cost) are then a lower bound."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0
    requests: int = 0
    unreported: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_hit_tokens + other.cache_hit_tokens,
            self.cache_miss_tokens + other.cache_miss_tokens,
            self.requests + other.requests,
            self.unreported + other.unreported,
        )

    @property
    def complete(self) -> bool:
        """Whether every response reported its usage (otherwise the counts are a lower bound)."""
        return self.unreported == 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_hit_tokens": self.cache_hit_tokens,
            "cache_miss_tokens": self.cache_miss_tokens,
            "total_tokens": self.total_tokens,
            "requests": self.requests,
            "unreported_requests": self.unreported,
        }


@dataclass(frozen=True)
class ToolCallFragment:
    """A piece of a streamed tool call. Fragments with the same `index` belong to the same call."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class ChatDelta:
    """One step of a streamed response; any field may be empty."""

    reasoning: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallFragment] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass
class ChatRequest:
    """What the loop asks of a backend. `tools` are OpenAI function-tool dicts; `extra` is merged into the body.
    `retry` is the turn's shared retry budget: a backend that retries draws its attempts from it (None: its own)."""

    messages: list[Message]
    tools: list[dict[str, Any]] = field(default_factory=list)
    thinking: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    retry: RetryBudget | None = field(default=None, repr=False, compare=False)


@runtime_checkable
class ModelBackend(Protocol):
    """Anything that can stream a chat response. `model` names the model for pricing and logs."""

    model: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]: ...


class ResponseAssembler:
    """Folds deltas into one `AssistantMessage`: text concatenated, tool-call fragments joined by index."""

    def __init__(self) -> None:
        self._reasoning: list[str] = []
        self._content: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def saw_tool_calls(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ChatDelta) -> None:
        if delta.reasoning:
            self._reasoning.append(delta.reasoning)
        if delta.content:
            self._content.append(delta.content)
        for frag in delta.tool_calls:
            call = self._calls.setdefault(frag.index, {"id": None, "name": "", "arguments": []})
            if frag.id and not call["id"]:
                call["id"] = frag.id
            if frag.name:
                # Some servers repeat the full name on every fragment, others send it once; never double it.
                call["name"] = (
                    frag.name if not call["name"] or frag.name.startswith(call["name"]) else call["name"]
                )
            if frag.arguments:
                call["arguments"].append(frag.arguments)
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason

    def message(self, call_id_prefix: str = "call") -> AssistantMessage:
        calls = [
            ToolCall(
                id=c["id"] or f"{call_id_prefix}_{i}",
                name=c["name"],
                arguments="".join(c["arguments"]) or "{}",
            )
            for i, c in sorted(self._calls.items())
        ]
        reasoning = "".join(self._reasoning) if self._reasoning else None
        content = "".join(self._content) if self._content else None
        return AssistantMessage(content=content, reasoning_content=reasoning, tool_calls=calls)
