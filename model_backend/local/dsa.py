"""DeepSeek Sparse Attention (DSA): the lightning indexer, top-k token selection, and the indexer's loss.

For every query token t the indexer scores every visible token s with a few cheap ReLU heads,

    I[t, s] = sum_h  w[t, h] * D_I^-0.5 * ReLU(q[t, h] . k[s]),        w[t, :] = weights_proj(x_t) * H_I^-0.5

and the attention of t then looks only at the k highest-scoring tokens, one selection shared by all attention
heads (DeepSeek-V3.2 report §2.1, eq. 1). The indexer's query comes from MLA's normalised low-rank query latent
through its own projection; its key is one vector per token, shared by all indexer heads (projection +
LayerNorm), so the indexer cache costs D_I numbers per token. The rope slice of q and k ([rope | nope], rope
first) is rotated in the rotate-half layout (the Nov-2025 fix; see rope.py).

Optional fidelity switches reproduce the production numerics: an orthonormal Hadamard rotation of q and k
(dot products unchanged, outliers spread out) and simulated FP8 (e4m3 with one power-of-two scale per block of
128). Both are off by default: on the CPU they cost time and change nothing but rounding.

Training (report §2.1): the indexer's inputs are detached, so the language-model loss never reaches the
indexer (top-k indices carry no gradient either) and the indexer loss never reaches the rest of the model. The
loss is KL(p || softmax(I)) with p the main attention summed over heads and L1-normalised, over all visible
tokens in the dense warm-up and over the selected set in sparse training.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope

FP8_E4M3_MAX = 448.0
FP8_BLOCK = 128
# Rows of at least this many times k scores are pre-filtered by a sampled threshold before the top-k.
CANDIDATE_MIN_ROW_PER_K = 8
CANDIDATE_MIN_ROWS = 16  # and only for prefill-sized batches of rows: a few rows are faster plainly
CANDIDATE_STRIDE = 32  # sample every 32nd score to guess the threshold
CANDIDATE_MARGIN = 2  # aim for about 2k candidates, so a low-luck sample still leaves k of them
# index_scores works on tiles of about this many per-head logits (1 MiB of float32: fits the L2 cache)
INDEX_TILE_ELEMS = 1 << 18
INDEX_TILE_MIN = 256
FUSED_MIN_ROWS = 64  # the fused oneDNN kernel is slower than a plain matmul for a few query rows


def _fused_linear_kernel() -> Any:
    """oneDNN's linear with a fused pointwise op (what torch.compile emits on x86), when this build has it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


_FUSED_LINEAR = _fused_linear_kernel()


# ----------------------------------------------------------------------------------------------------------------
# Fidelity switches: Hadamard rotation and simulated FP8
# ----------------------------------------------------------------------------------------------------------------


def hadamard_transform(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal Walsh-Hadamard transform over the last dim (a power of two): x @ H / sqrt(n)."""
    n = x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"the Hadamard rotation needs a power-of-two width, got {n}")
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        pairs = y.view(-1, n // (2 * h), 2, h)  # butterflies of span h
        a, b = pairs[:, :, 0], pairs[:, :, 1]
        y = torch.stack((a + b, a - b), dim=2).view(-1, n)
        h *= 2
    return (y * n**-0.5).view(*lead, n)


def fake_quant_fp8(x: torch.Tensor, block: int = FP8_BLOCK) -> torch.Tensor:
    """Round `x` through float8 e4m3 with one power-of-two scale per `block` values of the last dim.

    Mirrors DeepSeek's act_quant with scale_fmt "ue8m0": scale = 2^ceil(log2(amax / 448)), amax >= 1e-4.
    Returns the dequantised values in x's dtype, so the rest of the code stays in float.
    """
    n = x.shape[-1]
    block = min(block, n)
    if n % block:
        raise ValueError(f"the FP8 block ({block}) must divide the width ({n})")
    blocks = x.unflatten(-1, (n // block, block))  # [..., n/block, block]
    amax = blocks.abs().amax(dim=-1, keepdim=True).clamp_min(1e-4)
    scale = torch.exp2(torch.ceil(torch.log2(amax / FP8_E4M3_MAX)))
    q = (blocks / scale).clamp(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)
    return (q.to(x.dtype) * scale).flatten(-2)


# ----------------------------------------------------------------------------------------------------------------
# The lightning indexer
# ----------------------------------------------------------------------------------------------------------------


class LightningIndexer(nn.Module):
    """Scores which past tokens each query should attend to; one per attention layer."""

    def __init__(
        self,
        dim: int,
        q_lora_rank: int,
        n_heads: int,
        head_dim: int,
        rope_dim: int,
        *,
        hadamard: bool = False,
        fp8: bool = False,
    ) -> None:
        super().__init__()
        if rope_dim > head_dim:
            raise ValueError(f"the indexer rope slice ({rope_dim}) cannot exceed its head dim ({head_dim})")
        self.n_heads, self.head_dim, self.rope_dim = n_heads, head_dim, rope_dim
        self.hadamard, self.fp8 = hadamard, fp8
        self.wq_b = nn.Linear(q_lora_rank, n_heads * head_dim, bias=False)  # from MLA's query latent
        self.wk = nn.Linear(dim, head_dim, bias=False)  # one key per token, shared by all heads
        self.k_norm = nn.LayerNorm(head_dim, eps=1e-6)
        self.weights_proj = nn.Linear(dim, n_heads, bias=False)  # per-head weight of each query token

    def _finish(self, v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """RoPE (rotate-half) on the leading rope slice, then the optional Hadamard and FP8 steps."""
        v_pe, v_nope = v.split([self.rope_dim, self.head_dim - self.rope_dim], dim=-1)
        v = torch.cat((apply_rope(v_pe, cos, sin, interleaved=False), v_nope), dim=-1)
        if self.hadamard:
            v = hadamard_transform(v)
        if self.fp8:
            v = fake_quant_fp8(v)
        return v

    def keys(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Indexer keys of new tokens, the values that go into the indexer cache.

        x: [B, S, dim] (attention-normed hidden state); cos/sin: [B, S, rope_dim/2] -> [B, S, head_dim]
        """
        k = self.k_norm(self.wk(x.detach()))
        return self._finish(k, cos, sin)

    def queries(
        self, x: torch.Tensor, qr: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indexer queries and head weights, with both constant scales folded into the weights.

        x: [B, S, dim]; qr: [B, S, q_lora_rank] (MLA's normalised query latent)
        -> q [B, S, H_I, D_I], w [B, S, H_I]
        """
        bsz, seqlen, _ = x.shape
        q = self.wq_b(qr.detach()).view(bsz, seqlen, self.n_heads, self.head_dim)
        q = self._finish(q, cos.unsqueeze(2), sin.unsqueeze(2))
        w = self.weights_proj(x.detach()) * (self.n_heads**-0.5 * self.head_dim**-0.5)
        return q, w


def index_scores(q: torch.Tensor, w: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """I[b, t, s] = sum_h w[b, t, h] * ReLU(q[b, t, h] . keys[b, s]).

    q: [B, S, H, D]; w: [B, S, H] (scales folded in); keys: [B, T, D] -> [B, S, T]
    One matmul gives all heads' dot products, a batched (1 x H) @ (H x T) product the weighted sum. Long rows
    are done in tiles of keys so the per-head logits stay in the CPU cache: they are H times larger than the
    result, and writing them out to memory and reading them back costs more than the arithmetic.
    """
    bsz, seqlen, n_heads, head_dim = q.shape
    total = keys.shape[1]
    w = w.reshape(bsz, seqlen, 1, n_heads)
    tile = max(INDEX_TILE_MIN, INDEX_TILE_ELEMS // (seqlen * n_heads))
    out = w.new_empty(bsz, seqlen, total)
    q = q.to(keys.dtype)  # bfloat16 keys (a cache option): the dot products in bfloat16, the sum in float32
    for b in range(bsz):
        q_b = q[b].reshape(seqlen * n_heads, head_dim)
        for t0 in range(0, total, tile):
            logits = _relu_linear(q_b, keys[b, t0 : t0 + tile]).view(seqlen, n_heads, -1)  # [S, H, tile]
            out[b, :, t0 : t0 + tile] = torch.bmm(w[b], logits.to(w.dtype)).view(seqlen, -1)
    return out


def index_scores_batched(q: torch.Tensor, w: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """`index_scores` in two batched matmuls, for training: the tiles that keep inference in the CPU cache would
    become hundreds of small graph nodes under autograd. q [B, S, H, D], w [B, S, H], keys [B, T, D] -> [B, S, T]."""
    bsz, seqlen, n_heads, head_dim = q.shape
    logits = torch.relu(torch.matmul(q.reshape(bsz, seqlen * n_heads, head_dim), keys.transpose(1, 2)))
    return torch.matmul(w.unsqueeze(2), logits.view(bsz, seqlen, n_heads, -1)).squeeze(2)


def _relu_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """ReLU(x @ weight.T): x [M, D], weight [N, D] -> [M, N].

    Without autograd and for prefill-sized x, x86 builds run it as one oneDNN kernel with the ReLU fused (no
    extra pass over the logits); otherwise (decoding: a few rows) a plain matmul and ReLU.
    """
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    fusable = x.dtype == torch.float32 and x.device.type == "cpu" and x.shape[0] >= FUSED_MIN_ROWS
    if _FUSED_LINEAR is not None and fusable and not grad:
        return _FUSED_LINEAR(x, weight.contiguous(), None, "relu", [], "")
    return torch.relu(F.linear(x, weight))


def mask_future_(scores: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
    """Set scores[b, t, s] = -inf where key position s > query position q_pos[b, t], in place.

    scores: [B, S, T] over key positions 0..T-1; q_pos: [B, S]. Keys before the smallest query position are
    visible to every query, so only the columns from there on are touched (in a prefill block: S columns).
    """
    start = int(q_pos.min()) + 1  # every query sees the keys before this one
    if start >= scores.shape[-1]:
        return scores
    key_pos = torch.arange(start, scores.shape[-1], device=scores.device)
    future = key_pos.view(1, 1, -1) > q_pos.unsqueeze(-1)  # [B, S, T - start]
    scores[..., start:].masked_fill_(future, float("-inf"))
    return scores


def select_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions of the min(k, T) highest scores of each row, and whether each is a real (finite) score.

    scores: [B, S, T] with -inf at invisible positions -> indices [B, S, k'] (int64), valid [B, S, k'] (bool).
    Rows with fewer than k visible tokens return some -inf positions; `valid` marks them so the attention can
    drop them. Ties at the k-th score are broken toward the most recent tokens, so the selection does not
    depend on how a call was batched or blocked (ReLU scores tie at exactly 0 often).

    Long rows first keep only the candidates at or above a threshold guessed from a strided sample (a few
    times k of them), then select among those; torch.topk over the whole row costs ~10 ns per score on the
    CPU, about as much as computing the scores. The threshold is checked, not trusted: a row where fewer than
    k scores reach it falls back to all of its scores, so the result is always exact.
    """
    *lead, total = scores.shape
    k = min(k, total)
    rows = scores.reshape(-1, total)
    if total < CANDIDATE_MIN_ROW_PER_K * k or rows.shape[0] < CANDIDATE_MIN_ROWS:
        slots, valid = _topk_recent_ties(rows, k)
        return slots.view(*lead, k), valid.view(*lead, k)
    positions, values = _candidates(rows, k)
    slots, valid = _topk_recent_ties(values, k)
    return positions.gather(-1, slots).view(*lead, k), valid.view(*lead, k)


def _topk_recent_ties(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of values [R, N] (columns in position order), ties at the k-th going to the right."""
    top, slots = values.topk(k, dim=-1, sorted=False)
    kth = top.amin(dim=-1, keepdim=True)  # [R, 1]
    # a row is ambiguous when a score equal to its k-th one was left out
    ambiguous = ((values == kth).sum(dim=-1) > (top == kth).sum(dim=-1)) & (kth.squeeze(-1) > float("-inf"))
    if bool(ambiguous.any()):
        part, bar = values[ambiguous], kth[ambiguous]  # [n, N], [n, 1]
        above, tied = part > bar, part == bar
        room = k - above.sum(dim=-1, keepdim=True)  # how many tied columns fit
        tied_from_right = tied.flip(-1).cumsum(dim=-1).flip(-1)  # tied columns at or after each column
        chosen = above | (tied & (tied_from_right <= room))  # exactly k per row
        fixed = chosen.nonzero()[:, 1].view(-1, k)
        slots[ambiguous] = fixed
        top[ambiguous] = part.gather(-1, fixed)
    return slots, top > float("-inf")


def _candidates(rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every score of rows [R, T] that can be in its row's top-k, compacted in position order.

    -> positions [R, M], values [R, M] (padded with -inf), where each row holds all its scores >= a threshold
    that at least k of them reach. Every top-k score and every tie of the k-th score is among them.
    """
    n_rows, total = rows.shape
    sample = rows[:, ::CANDIDATE_STRIDE]
    want = min(sample.shape[1], CANDIDATE_MARGIN * k // CANDIDATE_STRIDE + 16)
    bar = sample.topk(want, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)  # [R, 1]
    keep = rows >= bar
    counts = keep.sum(dim=-1)
    short = counts < k  # the guess was too high for these rows: keep all their scores
    if bool(short.any()):
        keep[short] = True
        counts = keep.sum(dim=-1)
    flat = keep.view(-1).nonzero().squeeze(1)  # [N] row-major, so each row's columns come in position order
    row = flat // total
    slot = torch.arange(flat.shape[0], device=rows.device) - (counts.cumsum(0) - counts)[row]
    width = int(counts.max())
    dest = row * width + slot
    positions = torch.zeros(n_rows * width, dtype=torch.long, device=rows.device)
    positions.index_copy_(0, dest, flat - row * total)
    values = torch.full((n_rows * width,), float("-inf"), dtype=rows.dtype, device=rows.device)
    values.index_copy_(0, dest, rows.reshape(-1).index_select(0, flat))
    positions, values = positions.view(n_rows, width), values.view(n_rows, width)
    return positions, values


# ----------------------------------------------------------------------------------------------------------------
# Training loss
# ----------------------------------------------------------------------------------------------------------------


def indexer_kl_loss(
    attn_mass: torch.Tensor,
    scores: torch.Tensor,
    support: torch.Tensor,
    token_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over query tokens of KL(p || softmax(I)) restricted to `support`.

    attn_mass: [B, S, T] main attention probabilities summed over heads (no gradient is taken through it);
    scores: [B, S, T] indexer scores I; support: [B, S, T] bool, the tokens the distributions live on (all
    visible tokens in the dense warm-up, the selected set in sparse training); token_weight: [B, S] optional
    weights of the query tokens (e.g. 0 on padding). p = attn_mass on the support, L1-normalised.
    """
    p = attn_mass.detach().masked_fill(~support, 0.0)
    p = p / p.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    log_q = scores.masked_fill(~support, float("-inf")).log_softmax(dim=-1)
    log_q = log_q.masked_fill(~support, 0.0)  # 0 * (-inf) would be nan outside the support
    kl = (torch.special.xlogy(p, p) - p * log_q).sum(dim=-1)  # [B, S]
    if token_weight is None:
        return kl.mean()
    token_weight = token_weight.to(kl.dtype)
    return (kl * token_weight).sum() / token_weight.sum().clamp_min(1.0)


def attention_focus_loss(
    scores: torch.Tensor, visible: torch.Tensor, selected: torch.Tensor, token_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over query tokens of -log(the share of the dense attention mass that falls on the selected tokens),
    the share averaged over heads: minus the log of the top-k recall that `topk_recalls` measures.

    Why: the DeepSeek recipe trains the sparse model only through the tokens top-k keeps, so the scores of the
    dropped tokens never get a gradient and the dense attention of the same weights stays as spread out as the
    dense stage left it (a small model's layers put much of their mass outside any top-k). This
    loss pulls the dense distribution onto the selection, which makes the dense and the sparse model one model
    and the top-k a faithful summary of what the attention looks at.

    scores: [B, H, S, T] main attention logits (scaled, with gradient); visible: [B, S, T] bool, causal;
    selected: [B, S, T] bool, the indexer's top-k; token_weight: [B, S] optional query weights (0 on padding).
    The gradient reaches only the dropped tokens' logits (the selected ones' log-sum is held constant): the loss
    lowers what the selection leaves out instead of also sharpening the attention among the selected tokens, which is
    what the sparse model computes and what the LM loss is about (letting it reach both lowered turn-exact).
    Only queries that see more tokens than they select count (for the others the share is 1 by construction).
    """
    kept = scores.masked_fill(~selected.unsqueeze(1), float("-inf")).logsumexp(dim=-1).detach()
    dropped_mask = (visible & ~selected).unsqueeze(1)
    dropped = scores.masked_fill(~dropped_mask, -1e4).logsumexp(dim=-1)  # finite: no nan where nothing is dropped
    dropped = dropped.masked_fill(~dropped_mask.any(-1), float("-inf"))
    share = (kept - torch.logaddexp(kept, dropped)).exp().mean(dim=1)  # [B, S]
    rows = (visible.sum(-1) > selected.sum(-1)).to(share.dtype)
    if token_weight is not None:
        rows = rows * token_weight.to(share.dtype)
    return -(share.clamp_min(1e-6).log() * rows).sum() / rows.sum().clamp_min(1.0)


def indexer_training_losses(
    indexer: LightningIndexer, x: torch.Tensor, qr: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
    q: torch.Tensor, k: torch.Tensor, scale: float, topk: int | None, token_weight: torch.Tensor | None = None,
    *, focus: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The indexer's side of MLA's fused training path (`MLA.forward_fused`): score, select, and the KL to the main
    attention of queries q and keys k [B, S, H, d] (logits scaled by `scale`) -> (the selection [B, S, S], or None
    with `topk` None: the warm-up, every visible token; the indexer loss; the focus loss, 0 unless `focus`).

    In float32 whatever the autocast: bfloat16 rounding breaks the KL. The KL target (the main attention summed
    over heads) is built without a graph, one head at a time, since no gradient flows through it; with `focus`
    all heads' logits are built at once with a graph instead, since the focus loss trains through them.
    """
    bsz, seqlen = x.shape[:2]
    causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=x.device).tril().expand(bsz, -1, -1)
    with torch.autocast(x.device.type, enabled=False):
        f32 = (x.float(), qr.float(), cos, sin)
        q_idx, w_idx = indexer.queries(*f32)
        index = index_scores_batched(q_idx, w_idx, indexer.keys(f32[0], cos, sin))  # [B, S, S]
        index = index.masked_fill(~causal, float("-inf"))
        selected = None
        if topk is not None:
            sel, valid = select_topk(index.detach(), topk)
            selected = torch.zeros_like(causal).scatter_(-1, sel, valid)
        support = causal if selected is None else selected
        focus_loss = index.new_zeros(())
        if selected is not None and focus:
            logits = torch.einsum("bshd,bthd->bhst", q.float(), k.float()) * scale
            focus_loss = attention_focus_loss(logits, causal, selected, token_weight)
            with torch.no_grad():
                mass = logits.detach().masked_fill(~selected.unsqueeze(1), float("-inf")).softmax(dim=-1).sum(1)
        else:
            mass = _attention_mass(q, k, scale, support)
        return selected, indexer_kl_loss(mass, index, support, token_weight), focus_loss


@torch.no_grad()
def _attention_mass(q: torch.Tensor, k: torch.Tensor, scale: float, allowed: torch.Tensor) -> torch.Tensor:
    """Attention probabilities over `allowed` [B, S, T] summed over heads, in float32, one head at a time (a
    [B, S, T] buffer per head, not [B, H, S, T] per layer): q [B, S, H, d], k [B, T, H, d] -> [B, S, T]."""
    qt, kt = q.detach().float().transpose(1, 2), k.detach().float().transpose(1, 2)  # [B, H, S, d]
    mass = torch.zeros(allowed.shape, device=q.device)
    for h in range(qt.shape[1]):
        scores = torch.matmul(qt[:, h], kt[:, h].transpose(-1, -2)) * scale
        mass += scores.masked_fill_(~allowed, float("-inf")).softmax(dim=-1)
    return mass
