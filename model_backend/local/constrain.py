"""Constrained decoding of tool-call names: the local model can only name a tool it was offered, and only a
parameter that tool declares.

Why: a call to a tool that does not exist is always an error, and a small model's most frequent one (it writes
another environment's variant of a name, `find_accounts` where this request offers `list_accounts`). Servers such as
vLLM, SGLang and llama.cpp constrain tool calls with a grammar for the same reason. Only names are constrained:
values, reasoning and content are the model's own.

How: DSML writes `<｜DSML｜invoke name="NAME">` and `<｜DSML｜parameter name="KEY" ...>`, where the opening tags are
single special tokens. After either one is generated, the following tokens must spell ` name="` + one of the
allowed names + `"`; a token is allowed when the bytes so far plus its bytes are still a prefix of one of those
strings (or run past the end of one, as a token `">` would). Once a name is complete, decoding is free again.
A parameter already written in the current invoke is not offered again: the template's parser refuses a repeated
parameter, and a small model that loses count repeats one (`start`, `start`) instead of closing the invoke; once
every declared parameter is written, no further parameter may be opened.
After `</｜DSML｜function_calls>` the turn must end (the template puts end-of-sentence there), so only that token
is allowed: without it a small model can ramble on to `max_tokens` after its calls.
`ToolCallGrammar` holds the vocabulary's bytes (built once per backend); `for_tools` makes the per-request state.
"""

from __future__ import annotations

import copy
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
        self.calls_end_id = tokenizer.special_ids[cf.CALLS_END]
        self.eos_id = tokenizer.eos_id
        self.all_but_param = [t for t in range(tokenizer.vocab_size) if t != self.param_id]
        """What may follow once an invoke has every declared parameter (built once: it is asked every step)."""

    def for_tools(self, tools: Sequence[Mapping[str, Any]]) -> ToolCallConstraint | None:
        """Per-request state for OpenAI function-tool dicts; None when no tool is offered (nothing to constrain)."""
        params: dict[str, list[str]] = {}
        for tool in tools:
            fn = tool.get("function", tool)
            name = fn.get("name")
            if isinstance(name, str) and name:
                props = (fn.get("parameters") or {}).get("properties") or {}
                params[name] = [k for k in props if isinstance(k, str)]
        return ToolCallConstraint(self, params) if params else None


class ToolCallConstraint:
    """Which tokens may come next in one request's generation; `advance` after every generated token."""

    def __init__(self, grammar: ToolCallGrammar, params: dict[str, list[str]]) -> None:
        self.grammar = grammar
        self.params = params
        self.targets: list[bytes] | None = None  # while spelling a name: the complete strings it may become
        self.spelled = b""
        self.filling: str | None = None  # "tool" or "param": what the current name is
        self.tool: str | None = None  # the tool of the invoke being written
        self.written: set[str] = set()  # the parameters this invoke already has
        self.ended = False  # the calls block is closed: only end-of-sentence may follow

    def allowed(self) -> list[int] | None:
        """Token ids allowed next, or None when any token may come."""
        if self.ended:
            return [self.grammar.eos_id]
        if self.targets is None:
            declared = self.params.get(self.tool or "")
            if declared and self.written.issuperset(declared):  # nothing left to write: no further parameter
                return self.grammar.all_but_param
            return None
        out = []
        for token, piece in enumerate(self.grammar.token_bytes):
            if piece:
                text = self.spelled + piece
                if any(t.startswith(text) or text.startswith(t) for t in self.targets):
                    out.append(token)
        return out

    def fork(self) -> ToolCallConstraint:
        """An independent copy of this state, for a beam-search hypothesis that branches off here."""
        twin = copy.copy(self)
        twin.written = set(self.written)
        return twin

    def advance(self, token: int) -> None:
        if token == self.grammar.calls_end_id:
            self.ended = True
        elif token == self.grammar.invoke_id:
            self.written = set()
            self._start("tool", list(self.params))
        elif token == self.grammar.param_id:
            # a parameter of an unknown tool (or of a tool without declared parameters) stays free
            self._start("param", [p for p in self.params.get(self.tool or "", []) if p not in self.written])
        elif self.targets is not None:
            self.spelled += self.grammar.token_bytes[token]
            done = next((t for t in self.targets if self.spelled.startswith(t)), None)
            if done is not None:
                name = done[len(NAME_PREFIX) : -1].decode()
                if self.filling == "tool":
                    self.tool = name
                else:
                    self.written.add(name)
                self.targets = None

    def _start(self, filling: str, names: list[str]) -> None:
        self.filling, self.spelled = filling, b""
        self.targets = [NAME_PREFIX + n.encode() + b'"' for n in names] or None
