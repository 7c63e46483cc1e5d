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
  - a gate g per query: p(next) = g * softmax(vocab logits) + (1 - g) * pointer distribution;
  - spelling variants (`copy_variants` > 1): a copied word is often spelled with a leading space where it was read
    and without one where it is written, or the other way round (" Ravi" in the instruction, `>Ravi<` as a call's
    value; `"Kwame"` in a result, " Kwame" in the answer), and byte-level BPE makes those different tokens. A
    pointer that can only output the token it points at cannot copy either way: diagnosis found the right
    position under the pointer and the gate shut, the vocabulary guessing another name. So the pointer's mass goes
    to the token as written, without its leading space, or with one, by a per-query softmax that also holds the
    vocabulary gate, and the match features compare tokens without their leading space.

The learned part of the scores (q . k over the final hidden states) picks where a copy starts; the match features
carry it on. The head reads every visible position (it is not sparse): per token it caches `copy_dim` numbers and
the token id, and per decoded token it costs about copy_dim multiply-adds per context token, a few percent of one
dense MLA layer. Outputs are log-probabilities, which every consumer of logits (argmax, temperature, top-p,
cross-entropy) treats exactly as logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MATCH_INIT = 3.0
"""Initial a1 and a2: a matching position starts e^3 ~ 20x likelier than a non-matching one."""
NO_TOKEN = -1
"""The token "before" the first positions: equal to no token id."""
MAX_VARIANTS = 3
"""Spellings a pointer can output: the token as written, without its leading space, with a leading space."""


def spelling_variants(token_bytes: Sequence[bytes]) -> torch.Tensor:
    """[V, MAX_VARIANTS] token ids: each token as written, without its leading space, with a leading space, the
    token itself where the vocabulary has no such spelling. `token_bytes[i]` is token i's bytes (empty for special
    tokens, which have no variants)."""
    ids = {b: i for i, b in enumerate(token_bytes) if b}
    out = torch.arange(len(token_bytes)).unsqueeze(-1).repeat(1, MAX_VARIANTS)
    for i, b in enumerate(token_bytes):
        if b.startswith(b" ") and len(b) > 1:
            out[i, 1] = ids.get(b[1:], i)
        elif b and not b.startswith(b" "):
            out[i, 2] = ids.get(b" " + b, i)
    return out


def token_context(tokens: torch.Tensor) -> torch.Tensor:
    """tokens [B, T] -> [B, T, 3]: at each position its token and the two before it (NO_TOKEN where none).

    A query at i uses [..., 0:2] (its token, the one before); a key at j uses [..., 1:3] (the two before it)."""
    out = torch.full((*tokens.shape, 3), NO_TOKEN, dtype=torch.long, device=tokens.device)
    for shift in range(3):
        if shift < tokens.shape[1]:
            out[:, shift:, shift] = tokens[:, : tokens.shape[1] - shift]
    return out


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
    variant_ids: torch.Tensor

    def __init__(self, dim: int, copy_dim: int, vocab_size: int, variants: int = 1) -> None:
        super().__init__()
        if not 1 <= variants <= MAX_VARIANTS:
            raise ValueError(f"copy_variants must be 1..{MAX_VARIANTS} (1: the token as written only), got {variants}")
        self.copy_dim = copy_dim
        self.variants = variants
        self.wq = nn.Linear(dim, copy_dim, bias=False)
        self.wk = nn.Linear(dim, copy_dim, bias=False)
        # per query: the vocabulary's gate logit (against the pointer as written, logit 0), the unigram and bigram
        # match weights, then a gate logit per further spelling variant
        self.control = nn.Linear(dim, 3 + variants - 1)
        # which token each spelling of each token is: a function of the tokenizer, stored with the weights
        # (identity until `set_variants`; a one-variant head needs no table and its checkpoints have none)
        table = torch.arange(vocab_size).unsqueeze(-1).repeat(1, variants)
        self.register_buffer("variant_ids", table, persistent=variants > 1)

    def reset_control(self) -> None:
        """Vocabulary gate at 1/2 against the pointer (split evenly over the spellings) and both match weights at
        MATCH_INIT (called after the model's generic initialisation)."""
        with torch.no_grad():
            match = math.log(math.expm1(MATCH_INIT))
            self.control.bias.copy_(torch.tensor([math.log(self.variants), match, match] + [0.0] * (self.variants - 1)))

    def set_variants(self, table: torch.Tensor) -> None:
        """Install the tokenizer's spelling table (`spelling_variants`: [vocab, MAX_VARIANTS] ids)."""
        vocab = self.variant_ids.shape[0]
        if table.dim() != 2 or table.shape[0] > vocab or table.shape[1] < self.variants:
            raise ValueError(f"a spelling table [<= {vocab}, >= {self.variants}] is needed, got {list(table.shape)}")
        with torch.no_grad():
            self.variant_ids[: table.shape[0]] = table[:, : self.variants].to(self.variant_ids)

    def canonical(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (NO_TOKEN allowed) -> the same without a leading space, what the match features compare."""
        if self.variants == 1:
            return tokens
        spelled = self.variant_ids[:, 1][tokens.clamp_min(0)]
        return torch.where(tokens >= 0, spelled, tokens)

    def keys(self, h: torch.Tensor) -> torch.Tensor:
        """Final normalised hidden states [B, T, dim] -> pointer keys [B, T, copy_dim] (what the cache keeps)."""
        return self.wk(h)

    def match_weights(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per query, in float32: (log gates [B, S, 1 + variants]: the vocabulary's, then the pointer's per
        spelling; match weights a1, a2 >= 0 [B, S, 2])."""
        ctl = self.control(h).float()
        logits = torch.cat((ctl[..., :1], torch.zeros_like(ctl[..., :1]), ctl[..., 3:]), dim=-1)
        return logits.log_softmax(dim=-1), F.softplus(ctl[..., 1:3])

    def pointer(
        self,
        h: torch.Tensor,
        q_tokens: torch.Tensor,
        keys: torch.Tensor,
        k_tokens: torch.Tensor,
        visible: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention of each query over positions, and the log gates.

        h [B, S, dim] queries' hidden states; q_tokens [B, S, 2]: each query's token and the one before it;
        keys [B, T, copy_dim]; k_tokens [B, T, 2]: the token before each key position and the one before that;
        visible [B, S, T] -> (attention [B, S, T] over positions, float32; log gates [B, S, 1 + variants])
        """
        gates, weights = self.match_weights(h)
        matches = token_matches(self.canonical(q_tokens), self.canonical(k_tokens))
        scores = pointer_scores(self.queries(h).float(), keys.float(), weights, matches)
        attn = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)
        return attn, gates

    def queries(self, h: torch.Tensor) -> torch.Tensor:
        """Pointer queries [B, S, copy_dim], scaled by 1/sqrt(copy_dim)."""
        return self.wq(h) / math.sqrt(self.copy_dim)

    @staticmethod
    def mix(vocab_log_probs: torch.Tensor, log_gate: torch.Tensor, copy_probs: torch.Tensor) -> torch.Tensor:
        """log(g * p_vocab + p_copy): vocab_log_probs [..., X] (already log-softmaxed), log_gate [..., 1] (log g),
        copy_probs [..., X] the pointer's probabilities already weighed by their gates -> [..., X]."""
        # clamp: log(0) would be -inf with an infinite gradient times a zero weight (nan)
        return torch.logaddexp(log_gate + vocab_log_probs, copy_probs.clamp_min(1e-30).log())

    def vocab_log_probs(
        self,
        vocab_logits: torch.Tensor,
        attn: torch.Tensor,
        log_gates: torch.Tensor,
        key_ids: torch.Tensor,
    ) -> torch.Tensor:
        """The mixed next-token log-probabilities over the whole vocabulary (inference).

        vocab_logits [B, S, V]; attn [B, S, T]; log_gates [B, S, 1 + variants]; key_ids [B, T] -> [B, S, V]"""
        bsz, n_q, n_k = attn.shape
        spelled = self.variant_ids[key_ids].reshape(bsz, 1, n_k * self.variants).expand(-1, n_q, -1)
        mass = attn.unsqueeze(-1) * log_gates[..., 1:].exp().unsqueeze(-2)  # [B, S, T, variants]
        copy = torch.zeros(bsz, n_q, vocab_logits.shape[-1], dtype=attn.dtype, device=attn.device)
        copy.scatter_add_(-1, spelled, mass.reshape(bsz, n_q, -1))
        return self.mix(vocab_logits.float().log_softmax(dim=-1), log_gates[..., :1], copy)

    def log_probs(
        self, h: torch.Tensor, vocab_logits: torch.Tensor, q_tokens: torch.Tensor, keys: torch.Tensor,
        context: torch.Tensor, visible: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Inference output: `pointer` then `vocab_log_probs`. context [B, T, 3] from `token_context` of the key
        positions' tokens; the other arguments as `pointer` takes them -> [B, S, V]."""
        attn, gates = self.pointer(h, q_tokens, keys, context[..., 1:], visible)
        return self.vocab_log_probs(vocab_logits, attn, gates, context[..., 0])


COPY_CHUNK = 256
"""Queries per chunk in training: the chunk's [B, chunk, T] scores stay in the CPU's cache between operations."""


class _LabelCopyProbs(torch.autograd.Function):
    """c[b, i, v] = sum over j <= i of pointer(b, i, j) * [spelling v of tokens[b, j] == labels[b, i]]: the
    pointer's probability of each query's label under each spelling, for training.

    Why a hand-written backward: autograd over the whole [B, S, S] pointer keeps a dozen tensors of that size and
    doubled the step time of the shipped recipe. Here queries go in chunks that see only the keys before them
    (half the work of a square), nothing of size [B, S, S] is stored, and the backward recomputes each chunk's
    probabilities (as flash attention does). With p the pointer row and h_v the hits, dc_v/ds_j = p_j (h_vj - c_v);
    a test checks the gradient against autograd's.
    """

    @staticmethod
    def forward(
        ctx: Any, q: torch.Tensor, keys: torch.Tensor, weights: torch.Tensor, match_context: torch.Tensor,
        spelled: torch.Tensor, labels: torch.Tensor, active: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        out = q.new_zeros(*q.shape[:2], spelled.shape[-1])
        for blk, probs, hits, _ in _label_chunks(q, keys, weights, match_context, spelled, labels, active):
            for v, hit in enumerate(hits):
                out[:, blk, v] = (probs * hit).sum(-1)
        ctx.save_for_backward(q, keys, weights, match_context, spelled, labels, active, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, keys, weights, match_context, spelled, labels, active, out = ctx.saved_tensors
        dq, dk, dw = torch.zeros_like(q), torch.zeros_like(keys), torch.zeros_like(weights)
        for blk, probs, hits, (match1, match2) in _label_chunks(
            q, keys, weights, match_context, spelled, labels, active
        ):
            g = grad[:, blk]  # [B, c, variants]
            weighed = sum(hit * g[..., v : v + 1] for v, hit in enumerate(hits))  # sum_v g_v h_v
            ds = probs.mul_(weighed - (g * out[:, blk]).sum(-1, keepdim=True))  # [B, c, upto]
            upto = ds.shape[-1]
            dq[:, blk] = torch.matmul(ds, keys[:, :upto])
            dk[:, :upto] += torch.matmul(ds.transpose(1, 2), q[:, blk])
            dw[:, blk, 0] = (ds * match1).sum(-1)
            dw[:, blk, 1] = (ds * match2).sum(-1)
        return dq, dk, dw, None, None, None, None


def _label_chunks(
    q: torch.Tensor, keys: torch.Tensor, weights: torch.Tensor, match_context: torch.Tensor, spelled: torch.Tensor,
    labels: torch.Tensor, active: torch.Tensor,
) -> Any:  # fmt: skip
    """For each chunk of queries with an active one: (slice, pointer probabilities [B, c, upto], label hits per
    spelling (a list of [B, c, upto] floats), (match1, match2)), keys limited to those the chunk's last query can
    see. match_context [B, T, 3]: `token_context` of the canonical tokens; spelled [B, T, variants]."""
    for start in range(0, q.shape[1], COPY_CHUNK):
        blk = slice(start, min(start + COPY_CHUNK, q.shape[1]))
        if not bool(active[:, blk].any()):
            continue
        upto = blk.stop  # query i sees positions j <= i
        matches = token_matches(match_context[:, blk, :2], match_context[:, :upto, 1:])
        scores = pointer_scores(q[:, blk], keys[:, :upto], weights[:, blk], matches)
        pos = torch.arange(upto, device=q.device)
        future = pos.view(1, -1) > torch.arange(blk.start, blk.stop, device=q.device).view(-1, 1)  # [c, upto]
        probs = scores.masked_fill_(future, float("-inf")).softmax(dim=-1)
        label = labels[:, blk].unsqueeze(-1)
        hits = [(spelled[:, :upto, v].unsqueeze(1) == label).to(probs.dtype) for v in range(spelled.shape[-1])]
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
        gates, weights = copy.match_weights(hf[:, :-1])
        labels = ids[:, 1:]
        spelled = copy.variant_ids[ids]  # [B, S, variants]
        per_spelling = _LabelCopyProbs.apply(copy.queries(hf[:, :-1]), copy.keys(hf), weights,
                                             token_context(copy.canonical(ids)), spelled, labels, pred)  # fmt: skip
        g = gates[pred]  # [N, 1 + variants]
        copy_p = (per_spelling[pred] * g[:, 1:].exp()).sum(-1, keepdim=True)
        vocab = vocab_logits.float().log_softmax(dim=-1).gather(-1, labels[pred].unsqueeze(-1))  # [N, 1]
        return CopyHead.mix(vocab, g[:, :1], copy_p).squeeze(-1)
