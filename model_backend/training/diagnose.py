"""Where the model goes wrong, turn by turn: the first token greedy decoding misses in each reference turn
(teacher-forced), classified by the part of the turn it is in.

Why: pass@1 says how often a task is solved, `turn_exact` how often a turn is reproduced; neither says what to fix.
A miss in the reasoning (the plan, a date, a comparison) needs a model that reasons better; a miss in a tool or
parameter name is what constrained decoding is for; a parameter value that was in the context is the copy head's
job; one that was not (a sum, a shifted time) is arithmetic. `benchmarks/bench_agent_quality.py` prints the table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.tokenizer import ChatTokenizer

from .data import Example
from .metrics import turn_misses

MISS_KINDS = ("reasoning", "call or answer", "answer text", "tool name", "parameter name",
              "parameter value (in the context)", "parameter value (not in the context)", "call markup")  # fmt: skip
"""In the order a turn is written: thinking, then the choice between calling a tool and answering (the first token
after the thinking), then the answer or the DSML call block."""

_TOOL_NAME = re.compile(r'invoke name="[^"]*$')
_PARAM_NAME = re.compile(r'parameter name="[^"]*$')
_PARAM_VALUE = re.compile(r'string="(?:true|false)">([^<]*)$')


def classify_miss(prefix: str, rest: str, context: str) -> str:
    """The kind (one of MISS_KINDS) of a miss at the end of `prefix`, the turn's reference text before the missed
    token; `rest` is the reference text from that token on, `context` everything before the turn."""
    if cf.THINK_END in rest and cf.THINK_END not in prefix:
        return "reasoning"
    if prefix.endswith(cf.THINK_END):
        return "call or answer"
    if cf.CALLS_START not in prefix:
        return "answer text"
    if _TOOL_NAME.search(prefix):
        return "tool name"
    if _PARAM_NAME.search(prefix):
        return "parameter name"
    value = _PARAM_VALUE.search(prefix)
    if value is not None:
        whole = value.group(1) + rest.split("<", 1)[0]
        return "parameter value (in the context)" if whole and whole in context else "parameter value (not in the context)"
    return "call markup"


@dataclass
class TurnDiagnosis:
    """What `diagnose_turns` counted over the reference turns."""

    turns: int = 0
    exact: int = 0
    action_exact: int = 0
    """Turns whose part after the thinking (the call or the answer) is reproduced, given the reference thinking."""
    first_miss: Counter[str] = field(default_factory=Counter)

    def shares(self) -> dict[str, float]:
        return {kind: self.first_miss[kind] / self.turns for kind in MISS_KINDS} if self.turns else {}


def diagnose_turns(
    predict: Callable[[list[int]], list[int]], examples: Sequence[Example], tokenizer: ChatTokenizer
) -> TurnDiagnosis:
    """Teacher-force the reference trajectories (one forward pass each) and classify each turn's first miss."""
    out = TurnDiagnosis()
    think_end = tokenizer.special_ids.get(cf.THINK_END)
    for e, start, end, miss, pred in turn_misses(predict, examples):
        out.turns += 1
        turn = e.ids[start:end]
        action = turn.index(think_end) + 1 if think_end in turn else 0
        out.action_exact += all(pred[i - 1] == e.ids[i] for i in range(start + action, end))
        if miss is None:
            out.exact += 1
            continue
        prefix, rest = tokenizer.decode(e.ids[start:miss]), tokenizer.decode(e.ids[miss:end])
        out.first_miss[classify_miss(prefix, rest, tokenizer.decode(e.ids[:start]))] += 1
    return out
