"""Constrained tool-call names: whatever the model prefers, an invoke names an offered tool and a parameter names
one the tool declares; the engine picks only allowed tokens; nothing is constrained where nothing is offered."""

from __future__ import annotations

import random
import re

import pytest
import torch
from conftest import tiny_config

from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.constrain import CALL_MARKUP, NAME_PREFIX, ToolCallGrammar, value_targets
from agentkit.backends.local.generate import GenerationEngine, SamplingParams
from agentkit.backends.local.model import DSATransformer
from agentkit.backends.local.tokenizer import ChatTokenizer


def fn(name: str, *params: str) -> dict[str, object]:
    props = {p: {"type": "string"} for p in params}
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": props}}}


# names that share long prefixes, so a wrong early token would be easy to take
TOOLS = [fn("list_accounts", "owner"), fn("list_account_owners", "account_id", "active"), fn("find", "query")]


def spell(constraint, grammar: ToolCallGrammar, opener: int, rng: random.Random) -> bytes:
    """Feed `opener`, then random allowed tokens until the constraint lets go; the bytes written after it. A
    numeric value is written to its end (the closing tag, taken as soon as it is allowed, writes no bytes)."""
    constraint.advance(opener)
    written = b""
    for _ in range(200):
        allowed = constraint.allowed()
        if constraint.number is not None and grammar.param_close_id in allowed:
            constraint.advance(grammar.param_close_id)
            return written
        if values_free(allowed, grammar):
            return written
        token = rng.choice(allowed)
        written += grammar.token_bytes[token]
        constraint.advance(token)
    raise AssertionError(f"the name never completed: {written!r}")


def values_free(allowed: list[int] | None, grammar: ToolCallGrammar) -> bool:
    """No name is being spelled: any token may come, but for the parameter opener once every parameter the tool
    declares is written."""
    return allowed is None or set(range(len(grammar.token_bytes))) - set(allowed) == {grammar.param_id}


def name_of(written: bytes) -> str:
    assert written.startswith(NAME_PREFIX)
    return written[len(NAME_PREFIX) :].split(b'"')[0].decode()


def test_random_choices_among_allowed_tokens_always_spell_an_offered_name(tokenizer: ChatTokenizer):
    grammar = ToolCallGrammar(tokenizer)
    rng = random.Random(0)
    tools_seen, params_seen = set(), set()
    for _ in range(60):
        constraint = grammar.for_tools(TOOLS)
        assert constraint is not None
        tool = name_of(spell(constraint, grammar, grammar.invoke_id, rng))
        assert tool in {"list_accounts", "list_account_owners", "find"}
        param = name_of(spell(constraint, grammar, grammar.param_id, rng))
        declared = {"list_accounts": {"owner"}, "list_account_owners": {"account_id", "active"}, "find": {"query"}}
        assert param in declared[tool], (tool, param)
        tools_seen.add(tool)
        params_seen.add(param)
        # free again after the name (values are the model's own), but for the parameter opener once every declared
        # parameter is written (list_accounts and find declare one)
        allowed = constraint.allowed()
        assert values_free(allowed, grammar)
        assert (allowed is None) == (tool == "list_account_owners")
    assert len(tools_seen) == 3 and len(params_seen) == 4  # every name is reachable, prefixes of others included


def test_the_turn_ends_after_the_calls_block(tokenizer: ChatTokenizer):
    grammar = ToolCallGrammar(tokenizer)
    constraint = grammar.for_tools(TOOLS)
    assert constraint is not None
    spell(constraint, grammar, grammar.invoke_id, random.Random(1))
    assert constraint.allowed() is None  # arguments, more invokes: free
    constraint.advance(grammar.calls_end_id)
    assert constraint.allowed() == [tokenizer.eos_id]


def test_nothing_is_constrained_without_tools_or_declared_parameters(tokenizer: ChatTokenizer):
    grammar = ToolCallGrammar(tokenizer)
    assert grammar.for_tools([]) is None
    constraint = grammar.for_tools([fn("ping")])
    assert constraint is not None
    constraint.advance(grammar.calls_start_id)
    assert constraint.allowed() is None
    constraint.advance(grammar.param_id)  # a parameter of a tool that declares none
    assert constraint.allowed() is None


def markup_ids(tokenizer: ChatTokenizer) -> set[int]:
    return {tokenizer.special_ids[m] for m in CALL_MARKUP}


def test_call_markup_cannot_come_before_the_calls_block(tokenizer: ChatTokenizer):
    """No DSML tag in the thinking; in the answer only the tag that opens the calls block; inside it, free."""
    grammar = ToolCallGrammar(tokenizer)
    markup = markup_ids(tokenizer)
    constraint = grammar.for_tools(TOOLS, thinking=True)
    assert constraint is not None
    thinking = set(constraint.allowed() or [])
    assert not thinking & markup and grammar.think_end_id in thinking and tokenizer.eos_id in thinking
    assert len(thinking) == tokenizer.vocab_size - len(markup) - 1  # all but the markup and a second <think>
    for token in tokenizer.encode("I look up the account")[-3:]:
        constraint.advance(token)
        assert set(constraint.allowed() or []) == thinking  # text does not end the thinking
    constraint.advance(grammar.think_end_id)
    answer = set(constraint.allowed() or [])
    assert answer & markup == {grammar.calls_start_id} and grammar.think_end_id not in answer
    assert grammar.for_tools(TOOLS).allowed() == constraint.allowed()  # a prompt without thinking starts here
    constraint.advance(grammar.calls_start_id)
    assert constraint.allowed() is None
    assert name_of(spell(constraint, grammar, grammar.invoke_id, random.Random(4))) in {"list_accounts", "find",
                                                                                       "list_account_owners"}


async def test_sampled_thinking_never_holds_call_markup(tokenizer: ChatTokenizer):
    """A random model sampled very hot (close to uniform), through the engine: before the calls block, markup is only
    ever the opening tag, and never in the thinking; unconstrained, the same sampling writes markup there."""
    torch.manual_seed(5)
    model = DSATransformer(tiny_config(tokenizer.vocab_size, index_topk=8)).eval()
    grammar = ToolCallGrammar(tokenizer)
    markup = markup_ids(tokenizer)
    engine = GenerationEngine(model, max_batch=1, context_len=256)
    leaked = {True: 0, False: 0}
    try:
        for seed in range(8):
            for constrained in (True, False):
                constraint = grammar.for_tools(TOOLS, thinking=True) if constrained else None
                params = SamplingParams(max_new_tokens=120, temperature=50.0, seed=seed, constraint=constraint)
                tokens, _ = await engine.generate([tokenizer.bos_id, *tokenizer.encode("Find the account")], params)
                end = tokens.index(grammar.think_end_id) if grammar.think_end_id in tokens else len(tokens)
                opened = (tokens + [grammar.calls_start_id]).index(grammar.calls_start_id)
                leaked[constrained] += bool(set(tokens[:end]) & markup)
                leaked[constrained] += bool(set(tokens[end:opened]) & (markup - {grammar.calls_start_id}))
    finally:
        engine.close()
    assert leaked[True] == 0 and leaked[False] > 0, leaked


class OnlyThese:
    """A constraint that allows a fixed set of tokens at every step, and records what it was told."""

    def __init__(self, allowed: list[int]) -> None:
        self.ids, self.seen = allowed, []

    def allowed(self) -> list[int]:
        return self.ids

    def advance(self, token: int) -> None:
        self.seen.append(token)


@pytest.mark.parametrize("temperature", [0.0, 1.5])
async def test_the_engine_chooses_only_allowed_tokens(temperature: float):
    torch.manual_seed(3)
    model = DSATransformer(tiny_config(512, index_topk=8)).eval()
    engine = GenerationEngine(model, max_batch=2, context_len=128)
    try:
        only = OnlyThese([5, 9, 400])
        prompt = [7, 8, 9, 10]
        tokens, _ = await engine.generate(
            prompt, SamplingParams(max_new_tokens=8, temperature=temperature, seed=1, constraint=only)
        )
        assert set(tokens) <= {5, 9, 400} and only.seen == tokens
        if temperature == 0.0:  # greedy: the best of the allowed tokens under the model
            with torch.inference_mode():
                logits = model(torch.tensor([prompt]), mode="sparse")[0, -1]
            assert tokens[0] == max(only.ids, key=lambda t: float(logits[t]))
            assert int(logits.argmax()) not in only.ids  # the constraint changed the choice
    finally:
        engine.close()


def test_a_parameter_is_not_written_twice_in_one_invoke(tokenizer: ChatTokenizer):
    """The template's parser refuses a repeated parameter; a model that loses count gets the ones not yet written,
    and once all are written it cannot open another. A new invoke starts afresh."""
    grammar = ToolCallGrammar(tokenizer)
    rng = random.Random(2)
    for _ in range(20):
        constraint = grammar.for_tools([fn("list_account_owners", "account_id", "active", "page")])
        assert constraint is not None
        assert name_of(spell(constraint, grammar, grammar.invoke_id, rng)) == "list_account_owners"
        written = [name_of(spell(constraint, grammar, grammar.param_id, rng)) for _ in range(3)]
        assert sorted(written) == ["account_id", "active", "page"]
        allowed = constraint.allowed()
        assert allowed is not None and grammar.param_id not in allowed and grammar.invoke_id in allowed
        # the next invoke of the same block may use every name again
        assert name_of(spell(constraint, grammar, grammar.invoke_id, rng)) == "list_account_owners"
        assert name_of(spell(constraint, grammar, grammar.param_id, rng)) in {"account_id", "active", "page"}


def test_values_follow_the_declared_type_and_enum(tokenizer: ChatTokenizer):
    """After a parameter's name: the string attribute follows the type, an enum (or boolean) value is one of its
    values and is closed by the parameter tag (a value that is a prefix of another, `act` of `active`, included);
    other values are free."""
    grammar = ToolCallGrammar(tokenizer)
    props = {"state": {"type": "string", "enum": ["active", "frozen", "act"]}, "urgent": {"type": "boolean"},
             "count": {"type": "integer"}, "note": {"type": "string"}, "level": {"enum": [1, 2, 3]}}  # fmt: skip
    tools = [{"type": "function", "function": {"name": "set_state", "parameters": {"type": "object",
                                                                                  "properties": props}}}]  # fmt: skip
    rng = random.Random(3)
    values: dict[str, set[bytes]] = {name: set() for name in props}
    for _ in range(40):
        constraint = grammar.for_tools(tools)
        assert constraint is not None
        spell(constraint, grammar, grammar.invoke_id, rng)
        for _ in props:
            written = spell(constraint, grammar, grammar.param_id, rng)
            name = name_of(written)
            values[name].add(written[len(NAME_PREFIX) + len(name) + 1 :])
    assert values["state"] == {b' string="true">active', b' string="true">frozen', b' string="true">act'}
    assert values["urgent"] == {b' string="false">true', b' string="false">false'}
    assert values["level"] == {b' string="false">1', b' string="false">2', b' string="false">3'}
    # an integer is digits after its attribute; a string is free after it (the token that completes the attribute
    # may already run into the value)
    assert all(re.fullmatch(rb' string="false">-?[0-9]+', v) for v in values["count"]), values["count"]
    assert all(v.startswith(b' string="true">') for v in values["note"])


def _invoke(constraint, grammar: ToolCallGrammar, tokenizer: ChatTokenizer, text: str) -> None:
    """Feed the tokens of `text`, with the DSML tags in it as their special tokens."""
    for token in tokenizer.encode(text, allow_special=True):
        constraint.advance(token)


def test_a_number_is_digits_and_closes_only_once_complete(tokenizer: ChatTokenizer):
    """`814 KiB` where the schema says integer is a call the parser refuses: after a numeric parameter's attribute
    only number tokens may come, and the parameter tag only after a complete number."""
    grammar = ToolCallGrammar(tokenizer)
    props = {"units": {"type": "integer"}, "price": {"type": "number"}}
    tools = [{"type": "function", "function": {"name": "add_stock", "parameters": {"type": "object",
                                                                                  "properties": props}}}]  # fmt: skip
    constraint = grammar.for_tools(tools)
    assert constraint is not None
    _invoke(constraint, grammar, tokenizer, cf.INVOKE_OPEN + ' name="add_stock">\n' + cf.PARAM_OPEN
            + ' name="units" string="false">')
    assert constraint.number == "integer"
    allowed = constraint.allowed()
    assert grammar.param_close_id not in allowed  # nothing written yet
    texts = {grammar.token_bytes[t] for t in allowed}
    assert b"8" in texts and all(re.fullmatch(rb"-?[0-9]*", t) for t in texts)
    assert not any(b"K" in t or b" " in t or b"." in t for t in texts)
    _invoke(constraint, grammar, tokenizer, "22")
    assert grammar.param_close_id in constraint.allowed()
    constraint.advance(grammar.param_close_id)
    _invoke(constraint, grammar, tokenizer, "\n" + cf.PARAM_OPEN + ' name="price" string="false">12')
    assert constraint.number == "number"
    assert any(grammar.token_bytes[t] == b"." for t in constraint.allowed())
    _invoke(constraint, grammar, tokenizer, ".")
    assert grammar.param_close_id not in constraint.allowed()  # "12." is not a number
    _invoke(constraint, grammar, tokenizer, "5")
    assert grammar.param_close_id in constraint.allowed()
    constraint.advance(grammar.param_close_id)
    assert constraint.number is None


def test_an_invoke_cannot_close_before_its_required_parameters(tokenizer: ChatTokenizer):
    """The model that left `units` out of `add_stock(sku_id, units)` had its call refused: while a required
    parameter is unwritten the closing tags are masked, so its next choice opens another parameter."""
    grammar = ToolCallGrammar(tokenizer)
    props = {"sku_id": {"type": "string"}, "units": {"type": "integer"}, "note": {"type": "string"}}
    tools = [{"type": "function", "function": {"name": "add_stock", "parameters": {
        "type": "object", "properties": props, "required": ["sku_id", "units"]}}}]  # fmt: skip
    constraint = grammar.for_tools(tools)
    assert constraint is not None
    _invoke(constraint, grammar, tokenizer, cf.INVOKE_OPEN + ' name="add_stock">\n' + cf.PARAM_OPEN
            + ' name="sku_id" string="true">P3966' + cf.PARAM_CLOSE + "\n")
    allowed = constraint.allowed()
    assert allowed is not None and grammar.invoke_close_id not in allowed and grammar.calls_end_id not in allowed
    assert grammar.param_id in allowed
    _invoke(constraint, grammar, tokenizer, cf.PARAM_OPEN + ' name="units" string="false">22' + cf.PARAM_CLOSE + "\n")
    allowed = constraint.allowed()
    assert allowed is None or grammar.invoke_close_id in allowed  # "note" is optional


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "string"}, ([b' string="true">'], False)),
    ({"type": "array", "items": {"type": "string"}}, ([b' string="false">'], False)),
    ({"type": "string", "enum": ["a", "b"]}, ([b' string="true">a', b' string="true">b'], True)),
    ({"type": "boolean"}, ([b' string="false">true', b' string="false">false'], True)),
    ({"enum": ["a", 1]}, None),  # mixed: left to the tool's validation
    ({"type": ["string", "null"]}, None),  # no single type
    ({}, None),
])  # fmt: skip
def test_value_targets_of_schemas(schema: dict[str, object], expected: object):
    assert value_targets(schema) == expected
