"""What a trained model is measured by besides pass@1: how much of the dense attention top-k keeps (per layer, and
against the best any k tokens could keep), and how many reference turns greedy decoding reproduces token for token.

Why: pass@1 needs every turn of a task right, so it moves last; these figures move first and say where to look
(the indexer, a layer, or which token of a turn goes wrong: `diagnose.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from agentkit.backends.local.dsa import select_topk
from agentkit.backends.local.model import DSATransformer

from .data import Example


@torch.no_grad()
def layer_topk_recalls(
    model: DSATransformer, examples: Sequence[Example], *, min_context: int | None = None
) -> list[tuple[float, float]]:
    """Per layer, (the indexer's top-k recall, the oracle's): shares of the dense attention mass that top-k keeps,
    on whole trajectories.

    For every query that sees more than k tokens (below that, sparse attention is dense), the main attention
    probabilities of the dense model, summed over heads and normalised, are added up over the k tokens the indexer
    selects (first figure) and over the k tokens of largest mass, the most any selection can keep (second); each
    is the mean over those queries. 1.0 means sparse attention drops nothing the dense attention looked at; the
    ratio says how good the indexer is, the oracle alone how far a target recall is reachable at this k with these
    attention weights. Per layer, because the layers differ by far: a first layer that averages its context keeps
    much less of its mass in k tokens than the later ones (docs/dsa.md has the figures).
    """
    k = model.cfg.index_topk
    start = k if min_context is None else min_context
    n_layers = len(model.blocks)
    total, best, count = [0.0] * n_layers, [0.0] * n_layers, 0
    for e in examples:
        if len(e.ids) <= start:
            continue
        ids = torch.tensor([e.ids])
        seqlen = ids.shape[1]
        for layer, (mass, index) in enumerate(model.attention_maps(ids)):
            sel, valid = select_topk(index, k)
            kept = (mass.gather(-1, sel) * valid).sum(-1)[0, start:]  # queries that see more than k tokens
            total[layer] += float(kept.sum())
            best[layer] += float(mass.topk(k, dim=-1).values.sum(-1)[0, start:].sum())
        count += seqlen - start
    return [(t / count, b / count) if count else (1.0, 1.0) for t, b in zip(total, best, strict=True)]


def topk_recalls(
    model: DSATransformer, examples: Sequence[Example], *, min_context: int | None = None
) -> tuple[float, float]:
    """(the indexer's top-k recall, the oracle's) over all layers: the mean of `layer_topk_recalls` (every layer
    counts the same queries)."""
    return mean_recalls(layer_topk_recalls(model, examples, min_context=min_context))


def mean_recalls(layers: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(indexer, oracle) recall over all layers from `layer_topk_recalls`' per-layer figures."""
    return (sum(r for r, _ in layers) / len(layers), sum(o for _, o in layers) / len(layers))


def generated_turns(target: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of each run of generated tokens (one assistant turn each)."""
    turns: list[tuple[int, int]] = []
    start = None
    for i, t in enumerate([*target, False]):
        if t and start is None:
            start = i
        elif not t and start is not None:
            turns.append((start, i))
            start = None
    return turns


def turn_misses(
    predict: Callable[[list[int]], list[int]], examples: Sequence[Example]
) -> Iterator[tuple[Example, int, int, int | None, list[int]]]:
    """Each generated turn of the reference trajectories, teacher-forced: (example, start, end, the first position
    in [start, end) whose token greedy decoding gets wrong or None, the predictions). `predict(ids)` returns the
    argmax next token at every position; it runs once per example."""
    for e in examples:
        pred = predict(e.ids)
        for start, end in generated_turns(e.target):
            miss = next((i for i in range(start, end) if pred[i - 1] != e.ids[i]), None)
            yield e, start, end, miss, pred


def turn_exact_match(predict: Callable[[list[int]], list[int]], examples: Sequence[Example]) -> float:
    """Share of the generated turns of reference trajectories that greedy decoding reproduces token for token when
    it is given the reference conversation up to that turn (teacher forcing). Finer-grained than pass@1: a task
    needs every one of its turns right, so this figure moves first when the model improves, and its misses show
    which token went wrong (`diagnose.py`)."""
    misses = [miss for *_, miss, _ in turn_misses(predict, examples)]
    return sum(m is None for m in misses) / len(misses) if misses else float("nan")


def greedy_predictor(model: DSATransformer, mode: str = "sparse") -> Callable[[list[int]], list[int]]:
    """`predict` for `turn_exact_match`: one forward pass of the model in `mode`, argmax at every position."""

    @torch.no_grad()
    def predict(ids: list[int]) -> list[int]:
        return model(torch.tensor([ids]), mode=mode)[0].argmax(-1).tolist()

    return predict
