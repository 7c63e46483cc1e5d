"""Streaming parser: generated text in, `ChatDelta`s out, as the text arrives.

The model's output after the prompt is

    [reasoning </think>] content ["\\n\\n" <DSML function_calls> invokes </DSML function_calls>] <EOS>

and the parser follows it with a small state machine over a text buffer. Text pieces may split anywhere, markers
included: a buffer tail that could still become a marker is held back until the next piece decides. Reasoning and
content stream out as they arrive. A tool call streams in two fragments: its id and name as soon as the invoke tag is
complete (a UI can show "calling X"), and its arguments, rebuilt as one JSON object from the DSML parameters, when the
invoke closes. Arguments are never streamed half-built, because a parameter that turns out to be malformed cannot be
taken back once sent.

Nothing the model writes makes the parser raise. A broken invoke (bad tag, `string="false"` value that is not JSON,
duplicate parameter, stop inside the block) becomes a tool call whose arguments are the raw text the model wrote,
starting with the invoke tag: never valid JSON, so the agent loop's tool validation answers with an error result that
shows the model its own text, and the transcript keeps it verbatim (the template writes it back unchanged). What was
wrong is recorded in `errors` for logs.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from agentkit.backend import ChatDelta, ResponseAssembler, ToolCallFragment
from agentkit.messages import AssistantMessage

from .chat_format import (
    CALLS_END,
    CALLS_START,
    DSML,
    INVOKE_CLOSE,
    INVOKE_OPEN,
    PARAM_CLOSE,
    PARAM_OPEN,
    THINK_END,
)

INVALID_CALL_NAME = "invalid_tool_call"
"""Name given to a tool-call block whose invoke tag could not be read (the loop answers "unknown tool")."""

MAX_TAG_LEN = 512  # an opening tag longer than this without its ">" is malformed, not slow

_INVOKE_TAG = re.compile(re.escape(INVOKE_OPEN) + r'\s+name="([^"<>]+)"\s*>')
_PARAM_TAG = re.compile(re.escape(PARAM_OPEN) + r'\s+name="([^"<>]+)"(?:\s+string="(true|false)")?\s*>')


class _State(Enum):
    REASONING = auto()
    CONTENT = auto()
    CALLS = auto()  # inside function_calls, between invokes
    INVOKE = auto()  # inside an invoke, between parameters
    VALUE = auto()  # inside a parameter's value
    BROKEN = auto()  # inside an invoke that cannot be read: collect raw text up to its end
    AFTER = auto()  # after </function_calls>


@dataclass
class _Call:
    index: int
    name: str
    raw: list[str] = field(default_factory=list)  # everything written since the invoke tag began
    params: dict[str, Any] = field(default_factory=dict)
    param: tuple[str, bool | None] | None = None  # (name, string?) of the parameter being read
    body: list[str] = field(default_factory=list)  # free text between parameters (a JSON body, or garbage)


_WAIT: Any = object()


def _read_tag(buf: str, pattern: re.Pattern[str], final: bool) -> re.Match[str] | None:
    """Match an opening tag at the start of `buf` up to its first ">": the match, None when it is malformed, or
    _WAIT when the ">" has not arrived yet (and may still)."""
    gt = buf.find(">")
    if gt == -1:
        return None if final or len(buf) >= MAX_TAG_LEN else _WAIT
    return pattern.match(buf, 0, gt + 1)


def _held_back(buf: str, markers: tuple[str, ...]) -> int:
    """Length of the longest tail of `buf` that is a proper prefix of one of `markers` (it may still complete)."""
    best = 0
    for m in markers:
        for n in range(min(len(m) - 1, len(buf)), best, -1):
            if m.startswith(buf[-n:]):
                best = n
                break
    return best


class DSMLStreamParser:
    """Incremental parser of one generated assistant turn. `feed` text pieces, then `finish` once."""

    def __init__(self, *, thinking: bool) -> None:
        self._state = _State.REASONING if thinking else _State.CONTENT
        self._buf = ""
        self._out: list[ChatDelta] = []
        self._call: _Call | None = None
        self._n_calls = 0
        self._finished = False
        self.errors: list[str] = []

    @property
    def in_reasoning(self) -> bool:
        return self._state is _State.REASONING

    @property
    def n_tool_calls(self) -> int:
        return self._n_calls

    # -- public -----------------------------------------------------------------------------------------------------

    def feed(self, text: str) -> list[ChatDelta]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buf += text
        while self._buf and self._step(final=False):
            pass
        return self._take()

    def finish(self) -> list[ChatDelta]:
        """The end of generation: flush held-back text, close what is open (an open invoke is broken)."""
        if self._finished:
            return []
        self._finished = True
        while self._buf and self._step(final=True):
            pass
        if self._buf:  # only a partial marker can remain
            self._flush_rest()
        if self._call is not None:
            call = self._call
            where = {
                _State.VALUE: f"inside parameter {call.param[0]!r}" if call.param else "inside a parameter"
            }
            self._fail(f"generation stopped {where.get(self._state, 'inside the invoke')} of {call.name!r}")
            self._close_broken()
        elif self._state is _State.CALLS:
            self.errors.append(f"generation stopped before {CALLS_END}")
        return self._take()

    # -- emitting ---------------------------------------------------------------------------------------------------

    def _emit(self, *, reasoning: str = "", content: str = "", frag: ToolCallFragment | None = None) -> None:
        last = self._out[-1] if self._out else None
        if reasoning:
            if last is not None and last.reasoning is not None and not last.tool_calls:
                last.reasoning += reasoning
            else:
                self._out.append(ChatDelta(reasoning=reasoning))
        if content:
            if last is not None and last.content is not None and not last.tool_calls:
                last.content += content
            else:
                self._out.append(ChatDelta(content=content))
        if frag is not None:
            self._out.append(ChatDelta(tool_calls=[frag]))

    def _take(self) -> list[ChatDelta]:
        out, self._out = self._out, []
        return out

    def _consume(self, n: int) -> str:
        piece, self._buf = self._buf[:n], self._buf[n:]
        if self._call is not None:
            self._call.raw.append(piece)
        return piece

    # -- the state machine ------------------------------------------------------------------------------------------

    def _step(self, *, final: bool) -> bool:
        """Advance as far as the buffer allows; False when more text is needed."""
        handler = {
            _State.REASONING: self._reasoning,
            _State.CONTENT: self._content,
            _State.CALLS: self._calls,
            _State.INVOKE: self._invoke,
            _State.VALUE: self._value,
            _State.BROKEN: self._broken,
            _State.AFTER: self._after,
        }[self._state]
        return handler(final)

    def _reasoning(self, final: bool) -> bool:
        end, calls = self._buf.find(THINK_END), self._buf.find(CALLS_START)
        if end != -1 and (calls == -1 or end < calls):
            self._emit(reasoning=self._buf[:end])
            self._buf = self._buf[end + len(THINK_END) :]
            self._state = _State.CONTENT
            return True
        if calls != -1:  # a tool call with no </think>: accept it, reasoning ends here
            self.errors.append(f"tool calls began before {THINK_END}")
            self._emit(reasoning=self._buf[:calls].rstrip("\n"))
            self._buf = self._buf[calls + len(CALLS_START) :]
            self._state = _State.CALLS
            return True
        keep = 0 if final else _held_back(self._buf, (THINK_END, "\n\n" + CALLS_START))
        self._emit(reasoning=self._buf[: len(self._buf) - keep])
        self._buf = self._buf[len(self._buf) - keep :]
        return False

    def _content(self, final: bool) -> bool:
        calls = self._buf.find(CALLS_START)
        if calls != -1:
            self._emit(content=self._buf[:calls].rstrip("\n"))  # the "\n\n" before the block is a separator
            self._buf = self._buf[calls + len(CALLS_START) :]
            self._state = _State.CALLS
            return True
        if final:
            self._emit(content=self._buf)
            self._buf = ""
            return False
        # hold back a partial marker and the newlines before it (they are the separator if a block follows)
        keep = _held_back(self._buf, (CALLS_START,))
        head = self._buf[: len(self._buf) - keep]
        stripped = head.rstrip("\n")
        self._emit(content=stripped)
        self._buf = self._buf[len(stripped) :]
        return False

    def _calls(self, final: bool) -> bool:
        self._buf = self._buf.lstrip()
        buf = self._buf
        if not buf:
            return False
        if buf.startswith(CALLS_END):
            self._buf = buf[len(CALLS_END) :]
            self._state = _State.AFTER
            return True
        if buf.startswith(INVOKE_OPEN):
            match = _read_tag(buf, _INVOKE_TAG, final)
            if match is _WAIT:
                return False
            name = match.group(1).strip() if match else INVALID_CALL_NAME
            self._open_call(name)
            if match is None:
                self._fail(f"unreadable invoke tag {buf[: min(len(buf), 80)]!r}")
                return True
            self._consume(match.end())
            self._state = _State.INVOKE
            return True
        if not final and (INVOKE_OPEN.startswith(buf) or CALLS_END.startswith(buf)):
            return False
        self._open_call(INVALID_CALL_NAME)
        self._fail(f"expected {INVOKE_OPEN} or {CALLS_END}, got {buf[:40]!r}")
        return True

    def _invoke(self, final: bool) -> bool:
        call = self._call
        assert call is not None
        ws = len(self._buf) - len(self._buf.lstrip())
        if ws:
            call.body.append(self._consume(ws))
        buf = self._buf
        if not buf:
            return False
        if buf.startswith(INVOKE_CLOSE):
            self._buf = buf[len(INVOKE_CLOSE) :]  # not part of the raw text
            self._close_call()
            self._state = _State.CALLS
            return True
        if buf.startswith(PARAM_OPEN):
            match = _read_tag(buf, _PARAM_TAG, final)
            if match is _WAIT:
                return False
            if match is None:
                self._fail(f"unreadable parameter tag in {call.name!r}: {buf[: min(len(buf), 80)]!r}")
                return True
            self._consume(match.end())
            kind = match.group(2)
            call.param = (match.group(1).strip(), None if kind is None else kind == "true")
            self._state = _State.VALUE
            return True
        if not final and (INVOKE_CLOSE.startswith(buf) or PARAM_OPEN.startswith(buf)):
            return False
        if buf.startswith((f"<{DSML}", f"</{DSML}")):
            self._fail(f"unexpected tag in invoke {call.name!r}: {buf[:40]!r}")
            return True
        # free text in the invoke: a JSON body (accepted if alone and an object) or garbage (rejected at the close)
        stops = [i for i in (buf.find(f"<{DSML}"), buf.find(f"</{DSML}")) if i != -1]
        if stops:
            call.body.append(self._consume(min(stops)))
            return True
        keep = 0 if final else _held_back(buf, (f"<{DSML}", f"</{DSML}"))
        call.body.append(self._consume(len(buf) - keep))
        return False

    def _value(self, final: bool) -> bool:
        call = self._call
        assert call is not None and call.param is not None
        close = self._buf.find(PARAM_CLOSE)
        other = [
            i
            for i in (self._buf.find(f"<{DSML}"), self._buf.find(f"</{DSML}"))
            if i != -1 and i != close and not (close == -1 and PARAM_CLOSE.startswith(self._buf[i:]))
        ]
        if other and (close == -1 or min(other) < close):
            self._fail(f"parameter {call.param[0]!r} of {call.name!r} is not closed with {PARAM_CLOSE}")
            return True
        if close == -1:
            return False  # values are read whole; wait for the close tag
        value = self._consume(close)
        self._consume(len(PARAM_CLOSE))
        name, is_string = call.param
        call.param = None
        self._state = _State.INVOKE
        if name in call.params:
            self._fail(f"parameter {name!r} appears twice in {call.name!r}")
            return True
        if is_string:
            call.params[name] = value
            return True
        try:
            call.params[name] = json.loads(value)
        except json.JSONDecodeError:
            if is_string is None:  # no string attribute: take it as text
                call.params[name] = value
                return True
            self._fail(
                f'parameter {name!r} of {call.name!r} has string="false" but its value is not JSON: {value[:60]!r}'
            )
        return True

    def _broken(self, final: bool) -> bool:
        ends = [(i, m) for m in (INVOKE_CLOSE, CALLS_END) if (i := self._buf.find(m)) != -1]
        if ends:
            i, marker = min(ends)
            self._consume(i)
            self._buf = self._buf[len(marker) :]
            self._close_broken()
            self._state = _State.CALLS if marker == INVOKE_CLOSE else _State.AFTER
            return True
        keep = 0 if final else _held_back(self._buf, (INVOKE_CLOSE, CALLS_END))
        self._consume(len(self._buf) - keep)
        return False

    def _after(self, final: bool) -> bool:
        stripped = self._buf.lstrip()
        if not stripped:
            self._buf = ""
            return False
        if stripped.startswith(CALLS_START):  # a second block: parse it too
            self._buf = stripped[len(CALLS_START) :]
            self._state = _State.CALLS
            return True
        if not final and CALLS_START.startswith(stripped):
            return False
        self.errors.append(f"text after {CALLS_END} was kept as content")
        self._emit(content=self._buf)
        self._buf = ""
        return False

    def _flush_rest(self) -> None:
        rest, self._buf = self._buf, ""
        if self._state is _State.REASONING:
            self._emit(reasoning=rest)
        elif self._state in (_State.CONTENT, _State.AFTER):
            self._emit(content=rest)
        elif self._call is not None:
            self._call.raw.append(rest)

    # -- calls ------------------------------------------------------------------------------------------------------

    def _open_call(self, name: str) -> None:
        index = self._n_calls
        self._n_calls += 1
        self._call = _Call(index=index, name=name)
        call_id = f"call_{index:02d}_{secrets.token_hex(12)}"
        self._emit(frag=ToolCallFragment(index=index, id=call_id, name=name))

    def _fail(self, reason: str) -> None:
        self.errors.append(reason)
        self._state = _State.BROKEN

    def _close_call(self) -> None:
        call = self._call
        assert call is not None
        body = "".join(call.body).strip()
        if body:
            try:
                parsed = json.loads(body) if not call.params else None
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                call.params = parsed
            else:
                self.errors.append(
                    f"invoke {call.name!r} holds text that is neither parameters nor a JSON object"
                )
                self._close_broken()
                return
        self._emit(
            frag=ToolCallFragment(index=call.index, arguments=json.dumps(call.params, ensure_ascii=False))
        )
        self._call = None

    def _close_broken(self) -> None:
        call = self._call
        assert call is not None
        raw = "".join(call.raw) or INVOKE_OPEN
        self._emit(frag=ToolCallFragment(index=call.index, arguments=raw))
        self._call = None


def parse_completion(text: str, *, thinking: bool) -> tuple[AssistantMessage, list[str]]:
    """A whole completion at once: the assistant message and the parser's error notes."""
    parser = DSMLStreamParser(thinking=thinking)
    assembler = ResponseAssembler()
    for delta in parser.feed(text) + parser.finish():
        assembler.add(delta)
    return assembler.message(), parser.errors
