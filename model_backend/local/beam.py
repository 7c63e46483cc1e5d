"""Beam search over one generation (one assistant turn): the `width` most likely continuations are kept at every step
instead of greedy decoding's one.

Why: a turn of the local agent model is a short plan, then a tool call whose values are copied from the context.
Greedy decoding commits to each token's argmax, and a small model's slip early in a turn (a wrong digit, a stray
quote before an id) leaves it in text it never saw in training, where it goes on to ramble. Keeping a few
hypotheses and choosing by the probability of the whole turn recovers many of those: on held-out tasks the shipped
model's pass@1 rises (`benchmarks/bench_agent_quality.py --beams` measures it; docs/local_model.md).

How: the hypotheses of one request live in `width` cache rows of the generation engine and decode in its batched
forward together with everything else. Each step every live beam proposes its `width` best next tokens (among the
allowed ones when a tool-call constraint is active); the `width` best of all proposals by total log-probability
survive. A proposal that ends the turn (a stop token, the token budget, a full context) is a finished hypothesis.
The search stops when the best finished hypothesis scores at least as high as every live one: log-probabilities
only fall as a hypothesis grows, so no live beam can overtake it. A child that is not its parent's first takes a
row freed by a beam that had no surviving child and gets a copy of the parent's cache there (`DSACache.copy_row`),
so nothing is prefilled twice. The search is deterministic: ties are broken by beam order, then token id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(eq=False)
class Beam:
    """One hypothesis: the cache row that holds it, its tokens so far, their total log-probability, and its own copy
    of the request's decoding constraint (None: unconstrained)."""

    row: int
    tokens: list[int]
    logp: float
    constraint: Any = None

    @property
    def pending(self) -> int:
        """The last token, which the next decoding step feeds to the model."""
        return self.tokens[-1]


@dataclass
class BeamSearch:
    """The beams of one request. `start` takes the logits after the prompt, `step` those after each beam's pending
    token; both return the (source, destination) cache-row copies to make before the next decoding step. When
    `result` is set the search is over."""

    width: int
    rows: Sequence[int]
    """The request's cache rows (`width` of them); the prompt is prefilled into the first one."""
    max_tokens: int
    """Tokens a hypothesis may have at most (the request's max_new_tokens, or less where the context is fuller)."""
    stop_ids: frozenset[int]
    constraint: Any = None
    beams: list[Beam] = field(default_factory=list)
    finished: list[tuple[float, list[int], str]] = field(default_factory=list)
    result: tuple[list[int], str] | None = None
    """(tokens with the stop token, finish reason "stop" or "length") of the best hypothesis, once found."""

    def __post_init__(self) -> None:
        if self.width < 1 or len(self.rows) != self.width:
            raise ValueError(f"a beam search of width {self.width} needs {self.width} cache rows, got {len(self.rows)}")

    def start(self, logits: torch.Tensor) -> list[tuple[int, int]]:
        """logits [1, V] after the prompt (prefilled into rows[0])."""
        self.beams = [Beam(self.rows[0], [], 0.0, self.constraint)]
        return self.step(logits)

    def step(self, logits: torch.Tensor) -> list[tuple[int, int]]:
        """logits [len(beams), V]: the model's output after each live beam's pending token, in beam order."""
        proposals: list[tuple[float, int, int]] = []  # (total log-prob, beam index, token)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        for i, (beam, row) in enumerate(zip(self.beams, log_probs, strict=True)):
            allowed = beam.constraint.allowed() if beam.constraint is not None else None
            if allowed:
                index = torch.tensor(allowed)
                values, order = row[index].topk(min(self.width, len(allowed)))
                best = index[order]
            else:
                values, best = row.topk(self.width)
            proposals += [(beam.logp + v, i, t) for v, t in zip(values.tolist(), best.tolist(), strict=True)
                          if v != float("-inf")]  # fmt: skip
        proposals.sort(key=lambda p: (-p[0], p[1], p[2]))
        survivors: list[tuple[float, int, int]] = []
        for score, i, token in proposals:
            if len(survivors) == self.width:
                break
            tokens = [*self.beams[i].tokens, token]
            if token in self.stop_ids:
                self.finished.append((score, tokens, "stop"))
            elif len(tokens) >= self.max_tokens:
                self.finished.append((score, tokens, "length"))
            else:
                survivors.append((score, i, token))
        if self.finished:
            top = max(self.finished, key=lambda f: f[0])
            if not survivors or top[0] >= survivors[0][0]:
                self.result = (top[1], top[2])
                self.beams = []
                return []
        return self._fork(survivors)

    def _fork(self, survivors: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
        """The surviving proposals become the beams: a parent's first child keeps the parent's row, later children
        take rows whose beam left no child, filled with a copy of the parent's cache."""
        parents = self.beams
        kept = {parents[i].row for _, i, _ in survivors}
        spare = [r for r in self.rows if r not in kept]
        taken: set[int] = set()
        copies: list[tuple[int, int]] = []
        beams = []
        for score, i, token in survivors:
            parent = parents[i]
            if parent.row in taken:
                row = spare.pop()
                copies.append((parent.row, row))
            else:
                row = parent.row
                taken.add(row)
            constraint = parent.constraint.fork() if parent.constraint is not None else None
            if constraint is not None:
                constraint.advance(token)
            beams.append(Beam(row, [*parent.tokens, token], score, constraint))
        self.beams = beams
        return copies
