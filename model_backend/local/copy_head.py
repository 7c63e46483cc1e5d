"""The copy head: a pointer over the context, mixed into the vocabulary distribution (pointer-generator style).

Why the model has one: an agent's calls are mostly values copied from its context (a tool's exact name from the
tool list, an id from the instruction, a name from a tool result). Diagnosis of the model trained without it showed
that the first wrong token of almost every missed turn was such a value. A small transformer trained for minutes
on a CPU learns *which* value to use (the format, the procedure, the tool family) long before it learns to copy
arbitrary tokens through its attention and vocabulary projection: that needs an induction circuit (match the current
token against the token before each earlier position) and a copying output map, and neither formed within the
training budget. The copy head supplies both as structure:

  - a pointer: one attention over every earlier position whose output is that position's *token*, so a copy is a
    choice of position, not a circuit that must reproduce the token through the residual stream;
  - match features in its scores: +a1 when the current token equals the token before position j, and +a2 more when
    the token before that matches too (unigram and bigram induction, exact on token ids), with a1, a2 >= 0 set per
    query by the model, so continuing a copied value is available from the first step;
  - a gate g per query: p(next) = g * softmax(vocab logits) + (1 - g) * pointer distribution.

The learned part of the scores (q . k over the final hidden states) picks where a copy starts; the match features
carry it on. The head reads every visible position (it is not sparse): per token it caches `copy_dim` numbers and
the token id, and per decoded token it costs about copy_dim multiply-adds per context token, a few percent of one
dense MLA layer. Outputs are log-probabilities, which every consumer of logits (argmax, temperature, top-p,
cross-entropy) treats exactly as logits.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MATCH_INIT = 3.0
"""Initial a1 and a2: a matching position starts e^3 ~ 20x likelier than a non-matching one."""
NO_TOKEN = -1
"""The token "before" the first positions: equal to no token id."""


def token_context(tokens: torch.Tensor) -> torch.Tensor:
    """tokens [B, T] -> [B, T, 3]: at each position its token and the two before it (NO_TOKEN where none).

    A query at i uses [..., 0:2] (its token, the one before); a key at j uses [..., 1:3] (the two before it)."""
    out = torch.full((*tokens.shape, 3), NO_TOKEN, dtype=torch.long, device=tokens.device)
    for shift in range(3):
        if shift < tokens.shape[1]:
            out[:, shift:, shift] = tokens[:, : tokens.shape[1] - shift]
    return out


def log_gates(gate_logit: torch.Tensor) -> torch.Tensor:
    """Gate logits [...] -> [..., 2]: log g (vocabulary), log(1 - g) (pointer)."""
    return torch.stack((F.logsigmoid(gate_logit), F.logsigmoid(-gate_logit)), dim=-1)


def token_matches(q_tokens: torch.Tensor, k_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(unigram match, bigram match) [B, S, T] bool: the query's token equals the token before the key position
    (and the one before each of those too)."""
    match1 = q_tokens[..., 0].unsqueeze(-1) == k_tokens[..., 0].unsqueeze(1)
    return match1, match1 & (q_tokens[..., 1].unsqueeze(-1) == k_tokens[..., 1].unsqueeze(1))


def pointer_scores(
    q: torch.Tensor, keys: torch.Tensor, weights: torch.Tensor, matches: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """The pointer's scores before masking: q [B, S, P] (scaled) . keys [B, T, P] + a1 [unigram match] + a2 [bigram
    match]. weights [B, S, 2]; matches from `token_matches` -> [B, S, T]."""
    match1, match2 = matches
    scores = torch.matmul(q, keys.transpose(1, 2))
    return scores.add_(match1 * weights[..., :1]).add_(match2 * weights[..., 1:])


class CopyHead(nn.Module):
    def __init__(self, dim: int, copy_dim: int) -> None:
        super().__init__()
        self.copy_dim = copy_dim
        self.wq = nn.Linear(dim, copy_dim, bias=False)
        self.wk = nn.Linear(dim, copy_dim, bias=False)
        self.control = nn.Linear(dim, 3)  # per query: gate logit, unigram match weight, bigram match weight

    def reset_control(self) -> None:
        """Gate at 1/2 and both match weights at MATCH_INIT (called after the model's generic initialisation)."""
        with torch.no_grad():
            self.control.bias.copy_(torch.tensor([0.0, *[math.log(math.expm1(MATCH_INIT))] * 2]))

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """Final normalised hidden states [B, T, dim] -> pointer keys [B, T, copy_dim] (what the cache keeps)."""
        return self.wk(h)

    def match_weights(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per query: (gate logit [B, S], match weights a1, a2 >= 0 [B, S, 2]), in float32."""
        ctl = self.control(h).float()
        return ctl[..., 0], F.softplus(ctl[..., 1:])

    def pointer(
        self,
        h: torch.Tensor,
        q_tokens: torch.Tensor,
        keys: torch.Tensor,
        k_tokens: torch.Tensor,
        visible: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention of each query over positions, and the log of its vocabulary gate.

        h [B, S, dim] queries' hidden states; q_tokens [B, S, 2]: each query's token and the one before it;
        keys [B, T, copy_dim]; k_tokens [B, T, 2]: the token before each key position and the one before that;
        visible [B, S, T] -> (attention [B, S, T] over positions, float32; [B, S, 2]: log g, log(1 - g))
        """
        gate, weights = self.match_weights(h)
        scores = pointer_scores(self.queries(h).float(), keys.float(), weights, token_matches(q_tokens, k_tokens))
        attn = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)
        return attn, log_gates(gate)

    def queries(self, h: torch.Tensor) -> torch.Tensor:
        """Pointer queries [B, S, copy_dim], scaled by 1/sqrt(copy_dim)."""
        return self.wq(h) / math.sqrt(self.copy_dim)

    @staticmethod
    def mix(vocab_log_probs: torch.Tensor, log_gate: torch.Tensor, copy_probs: torch.Tensor) -> torch.Tensor:
        """log(g * p_vocab + (1 - g) * p_copy): vocab_log_probs [..., X] (already log-softmaxed), log_gate [..., 2]
        (log g, log(1 - g)), copy_probs [..., X] -> [..., X]."""
        # clamp: log(0) would be -inf with an infinite gradient times a zero weight (nan)
        return torch.logaddexp(
            log_gate[..., 0:1] + vocab_log_probs, log_gate[..., 1:2] + copy_probs.clamp_min(1e-30).log()
        )

    def vocab_log_probs(
        self,
        vocab_logits: torch.Tensor,
        attn: torch.Tensor,
        log_gate: torch.Tensor,
        key_ids: torch.Tensor,
    ) -> torch.Tensor:
        """The mixed next-token log-probabilities over the whole vocabulary (inference).

        vocab_logits [B, S, V]; attn [B, S, T]; log_gate [B, S, 2]; key_ids [B, T] -> [B, S, V]"""
        copy = torch.zeros(*attn.shape[:2], vocab_logits.shape[-1], dtype=attn.dtype, device=attn.device)
        copy.scatter_add_(-1, key_ids.unsqueeze(1).expand_as(attn), attn)
        return self.mix(vocab_logits.float().log_softmax(dim=-1), log_gate, copy)

    def log_probs(
        self, h: torch.Tensor, vocab_logits: torch.Tensor, q_tokens: torch.Tensor, keys: torch.Tensor,
        context: torch.Tensor, visible: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Inference output: `pointer` then `vocab_log_probs`. context [B, T, 3] from `token_context` of the key
        positions' tokens; the other arguments as `pointer` takes them -> [B, S, V]."""
        attn, gate = self.pointer(h, q_tokens, keys, context[..., 1:], visible)
        return self.vocab_log_probs(vocab_logits, attn, gate, context[..., 0])


COPY_CHUNK = 256
"""Queries per chunk in training: the chunk's [B, chunk, T] scores stay in the CPU's cache between operations."""


class _LabelCopyProbs(torch.autograd.Function):
    """c[b, i] = sum over j <= i of pointer(b, i, j) * [tokens[b, j] == labels[b, i]]: the pointer's probability of
    each query's label, for training.

    Why a hand-written backward: autograd over the whole [B, S, S] pointer keeps a dozen tensors of that size and
    doubled the step time of the shipped recipe. Here queries go in chunks that see only the keys before them
    (half the work of a square), nothing of size [B, S, S] is stored, and the backward recomputes each chunk's
    probabilities (as flash attention does). With p the pointer row and h the hits, dc/ds_j = p_j (h_j - c); a test
    checks the gradient against autograd's.
    """

    @staticmethod
    def forward(
        ctx: Any, q: torch.Tensor, keys: torch.Tensor, weights: torch.Tensor, context: torch.Tensor,
        labels: torch.Tensor, active: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        out = q.new_zeros(q.shape[:2])
        for blk, probs, hits, _ in _label_chunks(q, keys, weights, context, labels, active):
            out[:, blk] = (probs * hits).sum(-1)
        ctx.save_for_backward(q, keys, weights, context, labels, active, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, keys, weights, context, labels, active, out = ctx.saved_tensors
        dq, dk, dw = torch.zeros_like(q), torch.zeros_like(keys), torch.zeros_like(weights)
        for blk, probs, hits, (match1, match2) in _label_chunks(q, keys, weights, context, labels, active):
            ds = probs.mul_(hits - out[:, blk].unsqueeze(-1)).mul_(grad[:, blk].unsqueeze(-1))  # [B, c, upto]
            upto = ds.shape[-1]
            dq[:, blk] = torch.matmul(ds, keys[:, :upto])
            dk[:, :upto] += torch.matmul(ds.transpose(1, 2), q[:, blk])
            dw[:, blk, 0] = (ds * match1).sum(-1)
            dw[:, blk, 1] = (ds * match2).sum(-1)
        return dq, dk, dw, None, None, None


def _label_chunks(
    q: torch.Tensor, keys: torch.Tensor, weights: torch.Tensor, context: torch.Tensor, labels: torch.Tensor,
    active: torch.Tensor,
) -> Any:  # fmt: skip
    """For each chunk of queries with an active one: (slice, pointer probabilities [B, c, upto], label hits [B, c,
    upto] float, (match1, match2)), keys limited to those the chunk's last query can see."""
    for start in range(0, q.shape[1], COPY_CHUNK):
        blk = slice(start, min(start + COPY_CHUNK, q.shape[1]))
        if not bool(active[:, blk].any()):
            continue
        upto = blk.stop  # query i sees positions j <= i
        matches = token_matches(context[:, blk, :2], context[:, :upto, 1:])
        scores = pointer_scores(q[:, blk], keys[:, :upto], weights[:, blk], matches)
        pos = torch.arange(upto, device=q.device)
        future = pos.view(1, -1) > torch.arange(blk.start, blk.stop, device=q.device).view(-1, 1)  # [c, upto]
        probs = scores.masked_fill_(future, float("-inf")).softmax(dim=-1)
        hits = (context[:, :upto, 0].unsqueeze(1) == labels[:, blk].unsqueeze(-1)).to(probs.dtype)
        yield blk, probs, hits, matches


def copy_label_log_probs(
    copy: CopyHead, h: torch.Tensor, ids: torch.Tensor, pred: torch.Tensor, vocab_logits: torch.Tensor
) -> torch.Tensor:
    """Training: log p(next token) under the copy head's mixture at the positions in `pred` [B, S - 1] (position i
    predicts ids[:, i + 1]); the same maths as the model's inference output (a test checks they agree).

    h [B, S, dim] normalised final hidden states; vocab_logits [N, V] at the N positions of `pred` -> [N]."""
    # the pointer in float32: a softmax over whole trajectories
    with torch.autocast(h.device.type, enabled=False):
        hf = h.float()
        gate, weights = copy.match_weights(hf[:, :-1])
        labels = ids[:, 1:]
        copy_p = _LabelCopyProbs.apply(copy.queries(hf[:, :-1]), copy.keys(hf), weights, token_context(ids), labels,
                                       pred)  # fmt: skip
        vocab = vocab_logits.float().log_softmax(dim=-1).gather(-1, labels[pred].unsqueeze(-1))  # [N, 1]
        return CopyHead.mix(vocab, log_gates(gate[pred]), copy_p[pred].unsqueeze(-1)).squeeze(-1)
