"""The turn diagnosis: each reference turn's first missed token, classified by the part of the turn it is in."""

from __future__ import annotations

import pytest

from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.backend import SHIPPED_CHECKPOINT
from agentkit.backends.local.tokenizer import TOKENIZER_FILE, ChatTokenizer
from agentkit.envs.generator import generate_records
from agentkit.training.data import encode_records
from agentkit.training.diagnose import MISS_KINDS, classify_miss, diagnose_turns

CALL = f"\n\n{cf.CALLS_START}\n{cf.INVOKE_OPEN} name=\"list_dir\">\n{cf.PARAM_OPEN} name=\"dir\" string=\"true\">"


@pytest.mark.parametrize(("prefix", "rest", "kind"), [
    ("The configs live under /", f"opt/conf.{cf.THINK_END}{CALL}/opt/conf", "reasoning"),
    (f"I list it.{cf.THINK_END}", f"{CALL}/opt/conf", "call or answer"),
    (f"Done.{cf.THINK_END}The billing service has workers =", " 7.", "answer text"),
    (f"x{cf.THINK_END}\n\n{cf.CALLS_START}\n{cf.INVOKE_OPEN} name=\"", 'list_dir">', "tool name"),
    (f"x{cf.THINK_END}\n\n{cf.CALLS_START}\n{cf.INVOKE_OPEN} name=\"ls\">\n{cf.PARAM_OPEN} name=\"", 'dir"', "parameter name"),
    (f"x{cf.THINK_END}{CALL}/opt/", f"conf{cf.PARAM_CLOSE}", "parameter value (in the context)"),
    (f"x{cf.THINK_END}{CALL}", f"485 + 12{cf.PARAM_CLOSE}", "parameter value (not in the context)"),
    (f"x{cf.THINK_END}{CALL}/opt/conf{cf.PARAM_CLOSE}\n", f"{cf.INVOKE_CLOSE}", "call markup"),
])  # fmt: skip
def test_a_miss_is_classified_by_where_it_is(prefix: str, rest: str, kind: str):
    assert kind in MISS_KINDS
    assert classify_miss(prefix, rest, context="Its config file is in /opt/conf.") == kind


def test_diagnosis_of_real_reference_turns():
    """On real rendered trajectories: a perfect predictor misses nothing; one wrong token in the thinking of the
    first turn is a reasoning miss, and the call after that thinking still counts as reproduced."""
    tokenizer = ChatTokenizer.load(SHIPPED_CHECKPOINT / TOKENIZER_FILE)
    records = generate_records(3, 11, ("filesystem",), (1,))
    examples = encode_records(tokenizer, records)
    perfect = lambda seq: seq[1:] + [0]  # noqa: E731
    clean = diagnose_turns(perfect, examples, tokenizer)
    assert clean.turns >= 6 and clean.exact == clean.action_exact == clean.turns and not clean.first_miss
    first = examples[0]
    start = first.target.index(True)

    def thinks_wrong(seq: list[int]) -> list[int]:
        out = perfect(seq)
        if seq == first.ids:
            out[start] = (out[start] + 1) % tokenizer.vocab_size  # the second token of the first turn's thinking
        return out

    got = diagnose_turns(thinks_wrong, examples, tokenizer)
    assert got.first_miss == {"reasoning": 1} and got.exact == clean.turns - 1
    assert got.action_exact == clean.turns
    assert got.shares()["reasoning"] == pytest.approx(1 / clean.turns)
