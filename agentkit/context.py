"""Context that fits: what a long run sends when its prompt approaches the model's context window.

DeepSeek-V3.2's report describes this for its search agent: when the prompt passes a share of the window, either
discard old tool results, summarise the history, or restart from the task. `ContextPolicy` is that choice as data:

- `"drop"` (default): the oldest tool results are replaced by a short note (`[result dropped to fit the context
  window: 5,120 characters]`) until the prompt is back under `target` of the window; the tool message itself stays,
  with its call id, so the transcript stays valid on every wire. The results of the last `keep_recent` tool-using
  turns are never dropped.
- `"summary"`: the oldest whole turns (an assistant message and its tool results) are removed and a summary of them
  (each call, its arguments and the start of its result) goes in one user note after the task.
- `"restart"`: all earlier turns are removed: the model starts again from the task, with a note that says how many
  calls were made and what the last ones returned.

Only what is *sent* changes: `RunResult.messages` keeps the whole transcript. Decisions stick (a dropped result stays
dropped), so the prompt prefix stays stable for the provider's cache. Reasoning is never edited: an assistant message
is kept whole or removed together with its tool results, so DeepSeek's thinking-mode rule (every kept tool-using
turn's `reasoning_content` goes back) still holds. Prompt size is estimated from characters, calibrated by the
prompt tokens the server reported for the previous request.

`Agent(context_policy=...)`: the default `"auto"` is `ContextPolicy()` when the backend knows its window
(`model.context_window`: the provider table, or the local model's `context_len`), else off; `None` turns it off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

from agentkit.errors import ConfigurationError
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

Strategy = Literal["drop", "summary", "restart"]
DROPPED_NOTE = "[result dropped to fit the context window: {chars:,} characters]"
CHARS_PER_TOKEN = 3.5  # before the first reported usage


@dataclass(frozen=True)
class ContextPolicy:
    """When (`trigger`, a share of `window` tokens) and how (`strategy`) to shrink what is sent, and down to what
    (`target`). `window=None` takes the backend's `context_window`."""

    strategy: Strategy = "drop"
    window: int | None = None
    trigger: float = 0.8
    target: float = 0.5
    keep_recent: int = 2
    summary_chars: int = 200  # of each result in a summary note

    def __post_init__(self) -> None:
        if self.strategy not in ("drop", "summary", "restart"):
            raise ConfigurationError(f"unknown context strategy {self.strategy!r}: drop, summary or restart")
        if not 0 < self.target <= self.trigger <= 1:
            raise ConfigurationError("context policy: need 0 < target <= trigger <= 1")
        if self.window is not None and self.window < 1:
            raise ConfigurationError("context policy: window must be a positive number of tokens")


def resolve(policy: ContextPolicy | Literal["auto"] | None, model: object) -> ContextPolicy | None:
    """The policy an agent uses: `"auto"` is on where the backend's window is known."""
    window = getattr(model, "context_window", None)
    if policy == "auto":
        return ContextPolicy(window=window) if isinstance(window, int) and window > 0 else None
    if policy is None or isinstance(policy, ContextPolicy):
        if policy is not None and policy.window is None:
            if not (isinstance(window, int) and window > 0):
                raise ConfigurationError("context_policy needs window=...: this backend does not know its window")
            return replace(policy, window=window)
        return policy
    raise ConfigurationError("context_policy must be a ContextPolicy, 'auto' or None")


def _chars(m: Message) -> int:
    n = len(getattr(m, "content", None) or "") + len(getattr(m, "reasoning_content", None) or "") + 16
    for call in getattr(m, "tool_calls", None) or ():
        n += len(call.name) + len(call.arguments) + 24
    return n


@dataclass
class ContextWindow:
    """One run's context state: the results dropped and where the kept history starts."""

    policy: ContextPolicy
    tools_chars: int = 0
    dropped: set[str] = field(default_factory=set)
    cut: int = 0  # messages[head:cut] are replaced by `note`
    note: str | None = None
    tokens_per_char: float = 1 / CHARS_PER_TOKEN
    sent_chars: int = 0
    events: list[str] = field(default_factory=list)  # what was done, for logs and tests
    _specs: object = None

    def observe(self, prompt_tokens: int | None) -> None:
        """Calibrate the estimate with the prompt tokens the server reported for the last request."""
        if prompt_tokens and self.sent_chars:
            self.tokens_per_char = prompt_tokens / self.sent_chars

    def messages(self, messages: list[Message], first_new: int, specs: list[dict[str, object]]) -> list[Message]:
        """What to send for `messages` (the whole transcript; this run's task starts at `first_new`) with tools
        `specs`."""
        if specs is not self._specs:
            self._specs, self.tools_chars = specs, tools_chars(specs)
        head = _task_end(messages, first_new)
        view = self._view(messages, head)
        limit = self.policy.trigger * (self.policy.window or 0)
        chars = self._chars(view)
        if chars * self.tokens_per_char > limit:
            self._shrink(messages, head)
            view = self._view(messages, head)
            chars = self._chars(view)
        self.sent_chars = chars
        return view

    def _chars(self, view: list[Message]) -> int:
        return sum(map(_chars, view)) + self.tools_chars

    def _tokens(self, view: list[Message]) -> float:
        return self._chars(view) * self.tokens_per_char

    def _view(self, messages: list[Message], head: int) -> list[Message]:
        out = list(messages[:head])
        if self.note is not None:
            out.append(UserMessage(content=self.note))
        for m in messages[max(head, self.cut):]:
            if isinstance(m, ToolMessage) and m.tool_call_id in self.dropped:
                m = ToolMessage(tool_call_id=m.tool_call_id, name=m.name, is_error=m.is_error,
                                content=DROPPED_NOTE.format(chars=len(m.content)))  # fmt: skip
            out.append(m)
        return out

    def _turns(self, messages: list[Message], start: int) -> list[tuple[int, int]]:
        """(start, end) of each tool-using turn from `start`: an assistant message with calls and its results."""
        spans, i = [], start
        while i < len(messages):
            m = messages[i]
            if isinstance(m, AssistantMessage) and m.tool_calls:
                j = i + 1
                while j < len(messages) and isinstance(messages[j], ToolMessage):
                    j += 1
                spans.append((i, j))
                i = j
            else:
                i += 1
        return spans

    def _shrink(self, messages: list[Message], head: int) -> None:
        p = self.policy
        goal = p.target * (p.window or 0)
        turns = self._turns(messages, max(head, self.cut))
        old = turns[: max(len(turns) - p.keep_recent, 0)]
        if p.strategy == "drop":
            dropped = 0
            for a, b in old:
                for m in messages[a + 1 : b]:
                    if isinstance(m, ToolMessage) and m.tool_call_id not in self.dropped:
                        self.dropped.add(m.tool_call_id)
                        dropped += 1
                if self._tokens(self._view(messages, head)) <= goal:
                    break
            self.events.append(f"dropped {dropped} tool results")
            return
        if p.strategy == "restart":
            old = turns
        if not old:
            return
        end = old[-1][1]
        if p.strategy == "summary":
            for k in range(len(old)):  # remove as few whole turns as reach the goal
                end = old[k][1]
                self.cut, self.note = end, self._summary(messages, head, end)
                if self._tokens(self._view(messages, head)) <= goal:
                    break
            self.events.append(f"summarised {end - head} messages")
            return
        calls = sum(1 for m in messages[head:end] if isinstance(m, ToolMessage))
        last = [m for m in messages[head:end] if isinstance(m, ToolMessage)][-3:]
        lines = [f"- {m.name}: {_clip(m.content, p.summary_chars)}" for m in last]
        self.cut = end
        self.note = (f"[The conversation was reset to fit the context window. {calls} tool calls were made so far; "
                     "the last results were:]\n" + "\n".join(lines) + "\nContinue the task from here.")  # fmt: skip
        self.events.append(f"restarted after {calls} tool calls")

    def _summary(self, messages: list[Message], head: int, end: int) -> str:
        lines = []
        results = {m.tool_call_id: m for m in messages[head:end] if isinstance(m, ToolMessage)}
        for m in messages[head:end]:
            if isinstance(m, AssistantMessage):
                for call in m.tool_calls:
                    res = results.get(call.id)
                    got = _clip(res.content, self.policy.summary_chars) if res is not None else "(no result)"
                    lines.append(f"- {call.name}({_clip(call.arguments, 120)}) -> {got}")
        return ("[Earlier steps, summarised to fit the context window:]\n" + "\n".join(lines)
                + "\nContinue the task from here.")  # fmt: skip


def _task_end(messages: list[Message], first_new: int) -> int:
    """The end of the part never shrunk: the system prompt, the history before this run and this run's task."""
    i = first_new
    while i < len(messages) and isinstance(messages[i], SystemMessage | UserMessage):
        i += 1
    return max(i, 1)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tools_chars(specs: list[dict[str, object]]) -> int:
    return len(json.dumps(specs)) if specs else 0
