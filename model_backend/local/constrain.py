"""Constrained decoding of tool calls: the local model can only name a tool it was offered and a parameter that tool
declares, with the string attribute its type says and, for an enum or a boolean, one of its values.

Why: a call to a tool that does not exist is always an error, and a small model's most frequent one (it writes
another environment's variant of a name, `find_accounts` where this request offers `list_accounts`). Servers such as
vLLM, SGLang and llama.cpp constrain tool calls with a grammar for the same reason. Only names, the type attribute
and enum values are constrained: other values, reasoning and content are the model's own.

How: DSML writes `<｜DSML｜invoke name="NAME">` and `<｜DSML｜parameter name="KEY" ...>`, where the opening tags are
single special tokens. After either one is generated, the following tokens must spell ` name="` + one of the
allowed names + `"`; a token is allowed when the bytes so far plus its bytes are still a prefix of one of those
strings (or run past the end of one, as a token `">` would). Once a name is complete, decoding is free again,
but for a parameter's attribute and enum value (below).
A parameter already written in the current invoke is not offered again: the template's parser refuses a repeated
parameter, and a small model that loses count repeats one (`start`, `start`) instead of closing the invoke; once
every declared parameter is written, no further parameter may be opened.
After a parameter's name, its `string="true|false"` attribute follows the declared type (true for a string, false
for a number, boolean, array or object; free where the schema gives no single type), and a parameter with an `enum`
(or a boolean) can only take one of its values, closed by the parameter tag: a value outside the enum is an error the
tool would refuse, and with beam search the constraint also lowers the score of a hypothesis that chose the wrong
parameter (`state` where the value is `checking`), so the search prefers the right one. Other values stay free,
but for numbers: an `integer` value is digits (after an optional minus sign) and a `number` one a plain decimal,
closed by the parameter tag once complete. A small model writes the words it read instead (`814 KiB` for bytes),
which the template's parser can only refuse as invalid JSON, and such an episode fails.
An invoke cannot close while a parameter its schema requires is unwritten: a small model leaves one out
(`add_stock(sku_id)` without `units`) and the tool refuses the call; with the closing tag masked, the model's next
choice is the parameter tag, and the required name is among those offered.
After `</｜DSML｜function_calls>` the turn must end (the template puts end-of-sentence there), so only that token
is allowed: without it a small model can ramble on to `max_tokens` after its calls.
Before the calls block, call markup has no place: in the thinking (up to `</think>`) no DSML tag may come, and in the
answer text only `<｜DSML｜function_calls>`, which opens the block. A small model that loses track writes a
parameter tag into its thinking (`...total 10</｜DSML｜parameter> <｜DSML｜parameter name=...`), which the template's
parser can only keep as text: the turn is lost, the call never made, and the episode fails.
(How often each of these happened to the shipped model: docs/local_model.md.)
`ToolCallGrammar` holds the vocabulary's bytes (built once per backend); `for_tools` makes the per-request state.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import chat_format as cf
from .tokenizer import ChatTokenizer

NAME_PREFIX = b' name="'


class ToolCallGrammar:
    """The vocabulary as bytes and the two opening tags' ids, shared by every request of a backend."""

    def __init__(self, tokenizer: ChatTokenizer) -> None:
        self.token_bytes: list[bytes] = [
            b"" if tokenizer.is_special(i) else tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)
        ]
        self.invoke_id = tokenizer.special_ids[cf.INVOKE_OPEN]
        self.param_id = tokenizer.special_ids[cf.PARAM_OPEN]
        self.param_close_id = tokenizer.special_ids[cf.PARAM_CLOSE]
        self.calls_end_id = tokenizer.special_ids[cf.CALLS_END]
        self.eos_id = tokenizer.eos_id
        self.think_end_id = tokenizer.special_ids[cf.THINK_END]
        self.calls_start_id = tokenizer.special_ids[cf.CALLS_START]
        vocab = range(tokenizer.vocab_size)
        self.all_but_param = [t for t in vocab if t != self.param_id]
        """What may follow once an invoke has every declared parameter (built once: it is asked every step)."""
        self.invoke_close_id = tokenizer.special_ids[cf.INVOKE_CLOSE]
        self.all_but_close = [t for t in vocab if t not in (self.invoke_close_id, self.calls_end_id)]
        """What may follow while a required parameter of the invoke is unwritten: anything but the closing tags."""
        self.numeric = [t for t, b in enumerate(self.token_bytes) if b and NUMERIC_BYTES.fullmatch(b)]
        """Tokens that can be part of a JSON number as the model writes them (digits, a sign, a decimal point)."""
        markup = {tokenizer.special_ids[m] for m in CALL_MARKUP} | {tokenizer.special_ids[cf.THINK_START]}
        self.in_thinking = [t for t in vocab if t not in markup]
        """What the thinking may hold: anything but call markup (and a second `<think>`)."""
        self.in_answer = [t for t in vocab if t not in markup - {self.calls_start_id} and t != self.think_end_id]
        """What the answer before a calls block may hold: text, end of turn, or the tag that opens the block."""

    def for_tools(self, tools: Sequence[Mapping[str, Any]], *, thinking: bool = False) -> ToolCallConstraint | None:
        """Per-request state for OpenAI function-tool dicts, for a generation that starts in the thinking (`thinking`:
        the prompt ends with `<think>`) or in the answer; None when no tool is offered (nothing to constrain)."""
        params: dict[str, list[str]] = {}
        values: dict[tuple[str, str], ValueTargets] = {}
        numbers: dict[tuple[str, str], str] = {}
        required: dict[str, set[str]] = {}
        for tool in tools:
            fn = tool.get("function", tool)
            name = fn.get("name")
            if isinstance(name, str) and name:
                schema = fn.get("parameters") or {}
                props = schema.get("properties") or {}
                params[name] = [k for k in props if isinstance(k, str)]
                required[name] = {k for k in schema.get("required") or () if k in params[name]}
                for key in params[name]:
                    if isinstance(props[key], Mapping) and (targets := value_targets(props[key])) is not None:
                        values[(name, key)] = targets
                        if not targets[1] and props[key].get("type") in NUMBER_VALUE:
                            numbers[(name, key)] = props[key]["type"]
        if not params:
            return None
        return ToolCallConstraint(self, params, values, thinking=thinking, numbers=numbers, required=required)


CALL_MARKUP = (cf.CALLS_START, cf.CALLS_END, cf.INVOKE_OPEN, cf.INVOKE_CLOSE, cf.PARAM_OPEN, cf.PARAM_CLOSE)
"""The DSML tags of a calls block (each a single special token)."""

ValueTargets = tuple[list[bytes], bool]
"""What may follow a parameter's name: the complete texts, and whether the value ends there (an enum: only the
parameter's closing tag may come next) or goes on freely (only the string attribute is fixed)."""

FREE: ValueTargets = ([b""], False)
"""Nothing is constrained after the name."""

_NOT_STRING = ("integer", "number", "boolean", "array", "object")

NUMERIC_BYTES = re.compile(rb"[-.0-9]+")
NUMBER_VALUE = {
    "integer": (re.compile(rb"-?[0-9]*"), re.compile(rb"-?[0-9]+")),
    "number": (re.compile(rb"-?[0-9]*(\.[0-9]*)?"), re.compile(rb"-?[0-9]+(\.[0-9]+)?")),
}
"""(a prefix of a value, a complete value) of each numeric JSON type, as the constrained decoder lets the model
write it: plain decimals, no exponent (the model never writes one)."""


def value_targets(schema: Mapping[str, Any]) -> ValueTargets | None:
    """The constrained continuation after ` name="KEY"` for a parameter with this JSON schema; None: free."""
    kind = schema.get("type")
    enum = schema.get("enum")
    if kind == "boolean" and enum is None:
        enum = [True, False]
    if isinstance(enum, list) and enum:
        if all(isinstance(v, str) for v in enum) and kind in (None, "string"):
            return [f' string="true">{v}'.encode() for v in enum], True
        if not any(isinstance(v, str) for v in enum) and kind in (None, *_NOT_STRING):
            return [f' string="false">{json.dumps(v, ensure_ascii=False)}'.encode() for v in enum], True
        return None  # mixed or contradictory: leave it to the tool's own validation
    if kind == "string":
        return [b' string="true">'], False
    if kind in _NOT_STRING:
        return [b' string="false">'], False
    return None


class ToolCallConstraint:
    """Which tokens may come next in one request's generation; `advance` after every generated token.

    While a name is spelled, `targets` holds every complete text it may become: for a tool, ` name="TOOL"`; for a
    parameter, ` name="KEY"` followed by each of its value texts (`value_targets`). A target in `closed` ends exactly
    there and is followed by the parameter's closing tag; any other may run on into free text (a token `">` after a
    name). Checking the whole text at once keeps a token that spans the name and its attribute honest too.
    """

    def __init__(
        self, grammar: ToolCallGrammar, params: dict[str, list[str]],
        values: dict[tuple[str, str], ValueTargets] | None = None, *, thinking: bool = False,
        numbers: dict[tuple[str, str], str] | None = None, required: dict[str, set[str]] | None = None,
    ) -> None:  # fmt: skip
        self.grammar = grammar
        self.phase = "thinking" if thinking else "answer"  # then "calls" once the calls block opens
        self.params = params
        self.values = values or {}
        self.numbers = numbers or {}  # (tool, parameter) -> "integer" or "number"
        self.required = required or {}
        self.number_heads: dict[bytes, str] = {}  # free-running targets after which a number is written
        self.number: str | None = None  # the numeric type of the value being written
        self.value = b""  # the numeric value so far
        self.targets: list[bytes] | None = None  # while spelling: the complete texts it may become
        self.closed: frozenset[bytes] = frozenset()  # targets followed by the parameter's closing tag
        self.spelled = b""
        self.filling: str | None = None  # "tool" or "param": what the current name is
        self.named = False  # the name being spelled is complete (its attribute or enum value may still be spelled)
        self.heads: dict[str, bytes] = {}  # name -> ` name="NAME"`, for the names being spelled
        self.tool: str | None = None  # the tool of the invoke being written
        self.written: set[str] = set()  # the parameters this invoke already has
        self.ended = False  # the calls block is closed: only end-of-sentence may follow

    def allowed(self) -> list[int] | None:
        """Token ids allowed next, or None when any token may come."""
        if self.ended:
            return [self.grammar.eos_id]
        if self.phase == "thinking":
            return self.grammar.in_thinking
        if self.phase == "answer":
            return self.grammar.in_answer
        if self.number is not None:
            prefix, whole = NUMBER_VALUE[self.number]
            out = [t for t in self.grammar.numeric if prefix.fullmatch(self.value + self.grammar.token_bytes[t])]
            return [*out, self.grammar.param_close_id] if whole.fullmatch(self.value) else out
        if self.targets is None:
            declared = self.params.get(self.tool or "")
            if declared and self.written.issuperset(declared):  # nothing left to write: no further parameter
                return self.grammar.all_but_param
            if self.required.get(self.tool or "", set()) - self.written:
                return self.grammar.all_but_close
            return None
        out = []
        for token, piece in enumerate(self.grammar.token_bytes):
            if piece:
                text = self.spelled + piece
                if any(t.startswith(text) or (t not in self.closed and text.startswith(t) and self._runs_on(t, text))
                       for t in self.targets):  # fmt: skip
                    out.append(token)
        if self.spelled in self.closed:
            out.append(self.grammar.param_close_id)
        return out

    def _runs_on(self, target: bytes, text: bytes) -> bool:
        """Whether `text`, which runs past the free-running `target`, starts its value the way the value may go on
        (a number's first digits, where the target is a numeric parameter's attribute)."""
        kind = self.number_heads.get(target)
        return kind is None or NUMBER_VALUE[kind][0].fullmatch(text[len(target) :]) is not None

    def fork(self) -> ToolCallConstraint:
        """An independent copy of this state, for a beam-search hypothesis that branches off here."""
        twin = copy.copy(self)
        twin.written = set(self.written)
        return twin

    def advance(self, token: int) -> None:
        if token == self.grammar.think_end_id and self.phase == "thinking":
            self.phase = "answer"
        elif token in (self.grammar.calls_start_id, self.grammar.invoke_id) and self.phase != "calls":
            self.phase = "calls"  # the block is open (an invoke opens it too: the state follows what was written)
        if self.number is not None:  # a numeric value: digits until its closing tag
            if token == self.grammar.param_close_id:
                self.number, self.value = None, b""
            else:
                self.value += self.grammar.token_bytes[token]
            return
        if token == self.grammar.calls_end_id:
            self.ended = True
        elif token == self.grammar.invoke_id:
            self.written = set()
            self._start("tool", dict.fromkeys(self.params, FREE))
        elif token == self.grammar.param_id:
            # a parameter of an unknown tool (or of a tool without declared parameters) stays free
            tool = self.tool or ""
            names = [p for p in self.params.get(tool, []) if p not in self.written]
            self._start("param", {p: self.values.get((tool, p), FREE) for p in names})
        elif token == self.grammar.param_close_id:
            self.targets = None
        elif self.targets is not None:
            self.spelled += self.grammar.token_bytes[token]
            if not self.named:
                name = next((n for n, heads in self.heads.items() if self.spelled.startswith(heads)), None)
                if name is not None:
                    self.named = True
                    self.targets = [t for t in self.targets if t.startswith(self.heads[name])]
                    if self.filling == "tool":
                        self.tool = name
                    else:
                        self.written.add(name)
            run_on = next((t for t in self.targets if t not in self.closed and self.spelled.startswith(t)), None)
            if self.named and run_on is not None:
                self.targets = None  # the rest is free, but for a number
                if run_on in self.number_heads:
                    self.number, self.value = self.number_heads[run_on], self.spelled[len(run_on) :]

    def _start(self, filling: str, specs: dict[str, ValueTargets]) -> None:
        """Spell one of `specs`' names, each followed by one of its value texts (`FREE`: nothing after the name)."""
        self.filling, self.spelled, self.named = filling, b"", False
        self.heads = {name: NAME_PREFIX + name.encode() + b'"' for name in specs}
        self.targets = [self.heads[name] + t for name, (texts, _) in specs.items() for t in texts] or None
        self.closed = frozenset(self.heads[n] + t for n, (texts, closes) in specs.items() if closes for t in texts)
        tool = self.tool or ""
        self.number_heads = {self.heads[n] + texts[0]: self.numbers[(tool, n)] for n, (texts, _) in specs.items()
                             if filling == "param" and (tool, n) in self.numbers}  # fmt: skip
