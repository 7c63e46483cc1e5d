"""Constrained tool-call names: whatever the model prefers, an invoke names an offered tool and a parameter names
one the tool declares; the engine picks only allowed tokens; nothing is constrained where nothing is offered."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import tiny_config

from model_backend.local.constrain import CALL_MARKUP, NAME_PREFIX, ToolCallGrammar, value_targets
from model_backend.local.generate import GenerationEngine, SamplingParams
from model_backend.local.model import DSATransformer
from model_backend.local.tokenizer import ChatTokenizer


def fn(name: str, *params: str) -> dict[str, object]:
    props = {p: {"type": "string"} for p in params}
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": props}}}


# names that share long prefixes, so a wrong early token would be easy to take
TOOLS = [fn("list_accounts", "owner"), fn("list_account_owners", "account_id", "active"), fn("find", "query")]


def spell(constraint, grammar: ToolCallGrammar, opener: int, rng: random.Random) -> bytes:
    """Feed `opener`, then random allowed tokens until the constraint lets go; the bytes written after it."""
    constraint.advance(opener)
    written = b""
    for _ in range(200):
        allowed = constraint.allowed()
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
    # free after the attribute: the token that completes it may already run into the value
    assert all(v.startswith(b' string="false">') for v in values["count"])
    assert all(v.startswith(b' string="true">') for v in values["note"])


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
