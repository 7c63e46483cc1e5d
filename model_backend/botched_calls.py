"""Tool calls whose arguments are not a JSON object, on their way out of `agentkit serve` (server.py).

The local model's parser hands on a call the model botched (bad invoke tag, duplicate parameter, non-JSON value,
generation stopped inside the block) as a call whose arguments are the raw DSML the model wrote, and a remote provider
can send anything. The agent loop answers such a call with an error result, but an OpenAI client would json-parse the
arguments and fail with a confusing error, so the server answers with an error it can show instead:
`BotchedCall.message` says what happened, `StreamedCalls` holds streamed argument fragments back until they form a
JSON object, and `first_botched_call` finds one in a whole response.

Why the answer is a 502 with type and code `invalid_tool_call` and `x-should-retry: false`: the request was fine (not
a 4xx) and the server did not fail (not a 500); what it got from the model behind it, its upstream, is unusable,
which is what 502 Bad Gateway says (and what the server already answers for other upstream failures). The openai SDK
raises `InternalServerError` (an `APIStatusError`) reading "Error code: 502 - <message>", and its `.type` / `.code`
say `invalid_tool_call`, so a program can tell this case apart; a stream ends with `data: {"error": {...}}`, on which
the SDK raises `APIError` with the same fields. The SDK would retry a 5xx twice on its own, but a deterministic model
(greedy or beam decoding, or a fixed seed: the local model's defaults) writes the same broken call every time, so
each retry would cost a whole generation for nothing: the header leaves the choice to the caller, and the message
says what to change.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from agentkit.backend import ToolCallFragment
from agentkit.messages import ToolCall
from agentkit.redaction import Redactor

EXCERPT_CHARS = 200
# The local parser names a call whose invoke tag it could not read "invalid_tool_call".
UNREADABLE_NAMES = frozenset({"", "invalid_tool_call"})


def is_object(arguments: str) -> bool:
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False


@dataclass(frozen=True)
class BotchedCall:
    """A call that cannot be handed on: its name, the arguments text that arrived, and whether the text was cut
    (generation stopped once the excerpt was full, so the call may be longer)."""

    STATUS: ClassVar[int] = 502
    KIND: ClassVar[str] = "invalid_tool_call"  # the error's type and code
    HEADERS: ClassVar[dict[str, str]] = {"x-should-retry": "false"}

    name: str
    arguments: str
    cut: bool = False

    def message(self, redactor: Redactor | None = None) -> str:
        """Which tool, that the call could not be read, a short repr'd excerpt of what the model wrote (its own text,
        never request headers or keys, and redacted like every other string leaving a backend), and what to do."""
        who = (
            "a tool whose name could not be read" if self.name in UNREADABLE_NAMES else f"tool {self.name!r}"
        )
        text = (
            redactor.redact(self.arguments) if redactor is not None else self.arguments
        )  # then cut: no key half
        shown = repr(text[:EXCERPT_CHARS])
        if len(text) > EXCERPT_CHARS:
            shown += (
                f" (the first {EXCERPT_CHARS} of {'at least ' if self.cut else ''}{len(text)} characters)"
            )
        return (
            f"the model wrote a call to {who} that could not be read: its arguments are not a JSON object. "
            f"It wrote: {shown}. Retry the request, or sample differently (another seed, a temperature above 0, "
            f"or more beams)."
        )


def first_botched_call(calls: list[ToolCall]) -> BotchedCall | None:
    """The first assembled call whose arguments are not a JSON object, if any."""
    return next((BotchedCall(c.name, c.arguments) for c in calls if not is_object(c.arguments)), None)


class _Call:
    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.sent = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


class StreamedCalls:
    """The tool calls of one stream: fragments in, the `tool_calls` entries that may be sent out (a call's head, with
    id, type and name, as soon as it begins; its arguments once they form a JSON object).

    Fragments may split the JSON anywhere, so no fragment can be judged alone. A complete JSON object text ends with
    "}" (and whitespace), and no proper prefix of a valid call's arguments parses as an object, so a call's arguments
    are released, in one piece, the moment they parse as one: a valid call streams as soon as it is complete (the
    local parser sends each call's arguments whole anyway). Text that cannot become an object (it starts with anything
    but "{", or non-whitespace follows the complete object) breaks the call at once; text still incomplete when the
    stream ends breaks it then (`botched()`). After a break nothing more is released: the broken call's further text is
    only collected, for the excerpt, until it is complete enough to quote (`stopped`: another call began, the finish
    reason came, or the excerpt is full), so the server can stop the generation there."""

    def __init__(self) -> None:
        self.calls: dict[int, _Call] = {}
        self.stopped = False
        self._broken: _Call | None = None
        self._complete = False  # the broken call's text is all there (else it may be cut at the excerpt)

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def add(self, frag: ToolCallFragment) -> list[dict[str, Any]]:
        """The `tool_calls` entries to send for a fragment (none while its arguments are held back). Check `broken`
        after each fragment."""
        out: list[dict[str, Any]] = []
        call = self.calls.get(frag.index)
        if call is None:
            call = self.calls[frag.index] = _Call(frag.name or "")
            call_id = frag.id or f"call_{frag.index:02d}_{uuid.uuid4().hex[:24]}"
            out.append({"index": frag.index, "id": call_id, "type": "function",
                        "function": {"name": frag.name or "", "arguments": ""}})  # fmt: skip
        elif frag.name and (not call.name or frag.name.startswith(call.name)):
            call.name = frag.name  # as ResponseAssembler: some servers repeat the name on every fragment
        if not frag.arguments:
            return out
        call.parts.append(frag.arguments)
        ready = None
        if call.sent:  # only whitespace may follow the complete object
            ready = frag.arguments if not frag.arguments.strip() else None
        elif not (head := call.text.lstrip()) or head.startswith("{"):
            ready = ""
            if frag.arguments.rstrip().endswith("}") and is_object(call.text):
                call.sent, ready = True, call.text
        if ready is None:
            self._broken = call
            self._check_stop(False)
        elif ready:
            out.append({"index": frag.index, "function": {"arguments": ready}})
        return out

    def collect(self, frags: list[ToolCallFragment], finish_reason: str | None) -> None:
        """After the break: more of the broken call's text, for the excerpt; nothing is released."""
        broken, ended = self._broken, bool(finish_reason)
        for frag in frags:
            if broken is not None and self.calls.get(frag.index) is broken:
                broken.parts.append(frag.arguments)
            elif frag.index not in self.calls:  # the next call began: the broken one is complete
                ended = True  # (or, from a server that interleaves calls, as complete as it gets)
        self._check_stop(ended)

    def _check_stop(self, ended: bool) -> None:
        assert self._broken is not None
        self._complete = self._complete or ended
        self.stopped = self._complete or len(self._broken.text) > EXCERPT_CHARS

    def botched(self) -> BotchedCall | None:
        """At the end of the stream: the call that broke, or one whose arguments never formed a JSON object."""
        call = self._broken or next((c for c in self.calls.values() if c.parts and not c.sent), None)
        if call is None:
            return None
        return BotchedCall(call.name, call.text, cut=self.stopped and not self._complete)
