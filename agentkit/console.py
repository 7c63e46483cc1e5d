"""Render a run's events in a terminal as they happen: reasoning dimmed, tool calls and results, the answer, usage.

Used by `agentkit run`, the demo and the examples; any event consumer can be written the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape

from agentkit.events import (
    AssistantTurn,
    Event,
    Final,
    ReasoningDelta,
    RunResult,
    TextDelta,
    ToolResult,
    TurnRetry,
    TurnStart,
)

# C0 controls but newline and tab, DEL, C1 controls (ESC-less CSI on some terminals) and bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str) -> str:
    """`text` made safe to show in a terminal: a lone surrogate (which no encoder accepts) becomes U+FFFD, and every
    control or escape character becomes a visible escape (`\\x1b`), so output of model-written code can neither
    crash the CLI nor move the cursor, retitle the window, clear the screen or reorder text."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text)


def _s(text: str) -> str:
    """Escaped for rich markup and made safe for the terminal."""
    return escape(safe_text(text))


class EventPrinter:
    """Prints events incrementally. `max_result_chars` keeps long tool results from flooding the screen."""

    def __init__(self, console: Console | None = None, *, show_reasoning: bool = True, max_result_chars: int = 600) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.show_reasoning = show_reasoning
        self.max_result_chars = max_result_chars
        self._mode: str | None = None

    def _switch(self, mode: str | None) -> None:
        if self._mode != mode and self._mode in ("reasoning", "text"):
            self.console.print()
        self._mode = mode

    def __call__(self, event: Event) -> None:
        c = self.console
        if isinstance(event, TurnStart):
            self._switch(None)
            c.print(f"[bold cyan]── turn {event.turn}[/]")
        elif isinstance(event, ReasoningDelta):
            if self.show_reasoning:
                if self._mode != "reasoning":
                    self._switch("reasoning")
                    c.print("[dim italic]thinking: [/]", end="")
                c.print(f"[dim italic]{_s(event.text)}[/]", end="")
        elif isinstance(event, TextDelta):
            if self._mode != "text":
                self._switch("text")
            c.print(_s(event.text), end="")
        elif isinstance(event, TurnRetry):
            self._switch(None)
            pause = f" in {event.wait:.1f} s" if event.wait else ""
            attempt = f" (attempt {event.attempt})" if event.attempt else ""
            c.print(f"[yellow]stream interrupted ({_s(event.reason)}); retrying the turn{pause}{attempt}[/]")
        elif isinstance(event, AssistantTurn):
            self._switch(None)
            for call in event.message.tool_calls:
                c.print(f"[bold magenta]→ {_s(call.name)}[/]([magenta]{_s(_short(call.arguments, 300))}[/])")
        elif isinstance(event, ToolResult):
            style = "red" if event.is_error else "green"
            c.print(f"[{style}]← {_s(event.call.name)} ({event.duration * 1000:.0f} ms):[/] {_s(_short(event.content, self.max_result_chars))}")
        elif isinstance(event, Final):
            self._switch(None)
            c.print(summary_line(event.result))


def summary_line(result: RunResult) -> str:
    u = result.usage
    status = {"completed": "green", "error": "red"}.get(result.status, "yellow")
    err = f" — {_s(result.error or '')}" if result.error else ""
    unknown = f" (+ unknown: {u.unreported} responses reported no usage)" if u.unreported else ""
    at_least = " at least" if u.unreported else ""
    return (
        f"[{status}]{result.status}[/]{err} · {result.turns} turns · {result.tool_calls} tool calls · "
        f"{u.prompt_tokens} prompt ({u.cache_hit_tokens} cached) + {u.completion_tokens} completion "
        f"({u.reasoning_tokens} reasoning) tokens{unknown} · ${result.cost:.6f}{at_least} · {result.wall_time:.2f} s"
    )


def _short(text: str, limit: int) -> str:
    text = text.replace("\n", "⏎ ") if len(text) < 120 else text
    return text if len(text) <= limit else text[:limit] + f"… (+{len(text) - limit} chars)"


def result_json(result: RunResult) -> str:
    return _json_text(result.to_dict())


def print_json(data: Any) -> None:
    print(_json_text(data))


def _json_text(data: Any) -> str:
    """JSON with non-ASCII text kept readable; a lone surrogate stays a `\\udXXX` escape (valid JSON) instead of
    making the write to stdout raise, and control characters are escaped by JSON itself."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8", "backslashreplace").decode("utf-8")
