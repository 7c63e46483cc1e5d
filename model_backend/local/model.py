"""A small decoder-only transformer whose attention is DeepSeek Sparse Attention, for the CPU.

Read top to bottom: RMSNorm, the attention (MLA with a lightning indexer), the SwiGLU MLP, a block, the
transformer (its shape, `DSAConfig`, is in config.py). Notation: B batch, S new tokens in this call, T visible positions, H attention heads,
C kv_lora_rank, R qk_rope_head_dim, L = C + R (one cached latent row per token).

Attention is MLA as in DeepSeek-V3: a low-rank query (wq_a -> RMSNorm -> wq_b), a compressed kv latent
(wkv_a -> RMSNorm, C numbers) plus a decoupled RoPE key (R numbers, shared by all heads); per-head keys and
values are wkv_b(latent). The cache keeps only the latent and the rope key per token. Three attention modes run
on the same weights:

  dense          every visible token (the reference);
  sparse         DSA: the lightning indexer picks top-k tokens per query, attention reads only those;
  dense+indexer  dense attention while the indexer also scores (the warm-up stage of training).

Two execution paths share the weights:

  forward()        inference with a DSACache (prefill and batched decoding of sequences of different lengths).
                   Dense runs MHA-style over expanded keys (scaled_dot_product_attention) for multi-token calls
                   and MQA-style over latents (wkv_b absorbed into q and the output) for single-token decoding.
                   Sparse always runs MQA-style over the k gathered latents, in query blocks, so memory stays
                   bounded at long context and decoding copies only k cache rows per query.
  forward_train()  full sequences from position 0, explicit attention probabilities (the indexer's target),
                   sparsity as a mask, and the indexer's KL loss: the reference of training.
                   `fused=True` computes the same with the attention in the fused kernel (no [B, H, S, S]
                   probabilities with a graph), which is what training runs; tests hold it to the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .cache import DSACache
from .config import DSAConfig
from .copy_head import CopyHead, token_context
from .dsa import (
    LightningIndexer,
    index_scores,
    index_scores_batched,
    indexer_kl_loss,
    indexer_training_losses,
    mask_future_,
    select_topk,
)
from .errors import CacheCapacityError
from .rope import apply_rope, rope_tables

AttnMode = Literal["dense", "sparse", "dense+indexer"]
ATTN_GROUP = 16  # queries whose selected latents are gathered together (~5 MiB at k = 512)
ATTN_MODES: tuple[str, ...] = get_args(AttnMode)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@dataclass
class Step:
    """What every layer needs to know about one inference call."""

    mode: str
    cache: DSACache
    rows: torch.Tensor  # [B] cache rows
    positions: torch.Tensor  # [B, S] absolute positions of the new tokens
    cos: torch.Tensor  # [B, S, R/2]
    sin: torch.Tensor
    fresh: bool  # every row starts at position 0 (plain causal prefill)
    block: int  # queries per block in sparse / masked dense attention


class MLA(nn.Module):
    """Multi-head latent attention with a lightning indexer."""

    def __init__(self, cfg: DSAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.topk = cfg.n_heads, cfg.index_topk
        self.nope, self.rope, self.v_dim, self.c_dim = (
            cfg.qk_nope_head_dim,
            cfg.qk_rope_head_dim,
            cfg.v_head_dim,
            cfg.kv_lora_rank,
        )
        self.qk_dim = self.nope + self.rope
        self.softmax_scale = self.qk_dim**-0.5
        self.wq_a = nn.Linear(cfg.dim, cfg.q_lora_rank, bias=False)
        self.q_norm = RMSNorm(cfg.q_lora_rank, cfg.norm_eps)
        self.wq_b = nn.Linear(cfg.q_lora_rank, self.n_heads * self.qk_dim, bias=False)
        self.wkv_a = nn.Linear(cfg.dim, self.c_dim + self.rope, bias=False)
        self.kv_norm = RMSNorm(self.c_dim, cfg.norm_eps)
        self.wkv_b = nn.Linear(self.c_dim, self.n_heads * (self.nope + self.v_dim), bias=False)
        self.wo = nn.Linear(self.n_heads * self.v_dim, cfg.dim, bias=False)
        self.indexer = LightningIndexer(
            cfg.dim,
            cfg.q_lora_rank,
            cfg.index_n_heads,
            cfg.index_head_dim,
            cfg.qk_rope_head_dim,
            hadamard=cfg.index_hadamard,
            fp8=cfg.index_fp8,
        )

    # -- pieces shared by both paths ----------------------------------------------------------------------------

    def _project(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, S, dim] -> q_nope [B, S, H, nope], q_pe [B, S, H, R], latent [B, S, L], qr [B, S, q_lora]."""
        bsz, seqlen, _ = x.shape
        qr = self.q_norm(self.wq_a(x))
        q = self.wq_b(qr).view(bsz, seqlen, self.n_heads, self.qk_dim)
        q_nope, q_pe = q.split([self.nope, self.rope], dim=-1)
        interleaved = self.cfg.attn_rope_interleaved
        q_pe = apply_rope(q_pe, cos.unsqueeze(2), sin.unsqueeze(2), interleaved=interleaved)
        kv, k_pe = self.wkv_a(x).split([self.c_dim, self.rope], dim=-1)
        latent = torch.cat((self.kv_norm(kv), apply_rope(k_pe, cos, sin, interleaved=interleaved)), dim=-1)
        return q_nope, q_pe, latent, qr

    def _expand(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head keys and values from latents: [B, T, L] -> k [B, T, H, nope + R], v [B, T, H, v_dim]."""
        c, k_pe = latent.split([self.c_dim, self.rope], dim=-1)
        kv = self.wkv_b(c).unflatten(-1, (self.n_heads, self.nope + self.v_dim))
        k_nope, v = kv.split([self.nope, self.v_dim], dim=-1)
        k = torch.cat((k_nope, k_pe.unsqueeze(2).expand(-1, -1, self.n_heads, -1)), dim=-1)
        return k, v

    def _heads_first(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B, *, H, d] -> [B, H, *, d], q/k or v zero-padded to one width: the fused kernel needs equal widths."""
        pad = self.qk_dim - self.v_dim
        if pad > 0:
            v = F.pad(v, (0, pad))
        elif pad < 0:
            q, k = F.pad(q, (0, -pad)), F.pad(k, (0, -pad))
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def _absorbed_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """wkv_b split per head: W_uk [H, nope, C] (folded into q), W_uv [H, v_dim, C] (applied to the output)."""
        w = self.wkv_b.weight.view(self.n_heads, self.nope + self.v_dim, self.c_dim)
        return w[:, : self.nope], w[:, self.nope :]

    # -- inference path ------------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, step: Step, layer: int) -> torch.Tensor:
        """x [B, S, dim] -> [B, S, dim]; writes the new tokens' latents and indexer keys into the cache."""
        q_nope, q_pe, latent, qr = self._project(x, step.cos, step.sin)
        step.cache.write(layer, step.rows, step.positions, latent, self.indexer.keys(x, step.cos, step.sin))
        if step.mode == "sparse":
            out = self._sparse(q_nope, q_pe, x, qr, step, layer)
        else:
            if step.mode == "dense+indexer":  # score and select as sparse would, attend densely
                q_idx, w_idx = self.indexer.queries(x, qr, step.cos, step.sin)
                for blk in _blocks(x.shape[1], step.block):
                    self._select(q_idx[:, blk], w_idx[:, blk], step.positions[:, blk], step, layer)
            if q_nope.shape[1] == 1:
                out = self._dense_decode(q_nope, q_pe, step, layer)
            else:
                out = self._dense_prefill(q_nope, q_pe, step, layer)
        return self.wo(out.flatten(2))  # [B, S, H * v_dim] -> [B, S, dim]

    def _attend_latents(
        self, q_nope: torch.Tensor, q_pe: torch.Tensor, lat: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """MQA-style attention over latent rows, wkv_b absorbed (what a sparse MLA kernel does).

        q_nope [B, S, H, nope], q_pe [B, S, H, R]; lat [B, S or 1, K, L] (K rows per query, or shared);
        allowed [B, S, K] -> [B, S, H, v_dim]
        """
        w_uk, w_uv = self._absorbed_weights()
        q_lat = torch.matmul(q_nope.transpose(1, 2), w_uk).transpose(1, 2)  # [B, S, H, C]
        q = torch.cat((q_lat, q_pe), dim=-1) * self.softmax_scale  # [B, S, H, L]
        scores = torch.matmul(q, lat.transpose(-1, -2))  # [B, S, H, K]
        if not bool(allowed.all()):
            scores.masked_fill_(~allowed.unsqueeze(2), float("-inf"))
        o = torch.matmul(scores.softmax(dim=-1), lat)[..., : self.c_dim]  # [B, S, H, C]
        return torch.matmul(o.transpose(1, 2), w_uv.transpose(1, 2)).transpose(1, 2)  # [B, S, H, v_dim]

    def _dense_decode(self, q_nope: torch.Tensor, q_pe: torch.Tensor, step: Step, layer: int) -> torch.Tensor:
        """One new token per row: MQA-style over every cached latent of the row (a full score row)."""
        upto = int(step.positions.max()) + 1
        lat = step.cache.read_latent(layer, step.rows, upto)  # [B, T, L]
        key_pos = torch.arange(upto, device=lat.device)
        visible = key_pos.view(1, 1, -1) <= step.positions.unsqueeze(-1)  # [B, 1, T]
        return self._attend_latents(q_nope, q_pe, lat.unsqueeze(1), visible)

    def _dense_prefill(
        self, q_nope: torch.Tensor, q_pe: torch.Tensor, step: Step, layer: int
    ) -> torch.Tensor:
        """MHA-style dense attention through scaled_dot_product_attention (no T x T tensor is built)."""
        upto = int(step.positions.max()) + 1
        k, v = self._expand(step.cache.read_latent(layer, step.rows, upto))  # [B, T, H, *]
        q, k, v = self._heads_first(torch.cat((q_nope, q_pe), dim=-1), k, v)  # [B, H, *, d]
        if step.fresh:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.softmax_scale)
        else:
            key_pos = torch.arange(upto, device=q.device)
            parts = []
            for blk in _blocks(q.shape[2], step.block):
                visible = key_pos.view(1, 1, -1) <= step.positions[:, blk].unsqueeze(-1)  # [B, Sb, T]
                parts.append(
                    F.scaled_dot_product_attention(
                        q[:, :, blk], k, v, attn_mask=visible.unsqueeze(1), scale=self.softmax_scale
                    )
                )
            o = torch.cat(parts, dim=2)
        return o.transpose(1, 2)[..., : self.v_dim]  # [B, S, H, v_dim]

    def _select(
        self, q_idx: torch.Tensor, w_idx: torch.Tensor, pos: torch.Tensor, step: Step, layer: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k selection for one query block.

        q_idx [B, Sb, H_I, D_I], w_idx [B, Sb, H_I], pos [B, Sb] -> indices [B, Sb, k], valid [B, Sb, k]
        """
        keys = step.cache.read_index_keys(layer, step.rows, int(pos.max()) + 1)  # [B, T, D_I]
        scores = mask_future_(index_scores(q_idx, w_idx, keys), pos)  # [B, Sb, T]
        return select_topk(scores, self.topk)

    def _sparse(
        self,
        q_nope: torch.Tensor,
        q_pe: torch.Tensor,
        x: torch.Tensor,
        qr: torch.Tensor,
        step: Step,
        layer: int,
    ) -> torch.Tensor:
        """DSA: per query block, select top-k with the indexer, then attend over the gathered latents only."""
        q_idx, w_idx = self.indexer.queries(x, qr, step.cos, step.sin)  # [B, S, H_I, D_I], [B, S, H_I]
        out = q_nope.new_empty(*q_nope.shape[:3], self.v_dim)  # [B, S, H, v_dim]
        for blk in _blocks(x.shape[1], step.block):
            idx, valid = self._select(q_idx[:, blk], w_idx[:, blk], step.positions[:, blk], step, layer)
            # attend in small groups of queries, so each group's gathered rows are still in cache for the
            # second matmul (values) after the first (scores)
            for sub in _blocks(blk.stop - blk.start, ATTN_GROUP):
                at = slice(blk.start + sub.start, blk.start + sub.stop)
                lat = step.cache.gather_latent(layer, step.rows, idx[:, sub])  # [B, g, k, L]
                out[:, at] = self._attend_latents(q_nope[:, at], q_pe[:, at], lat, valid[:, sub])
        return out

    # -- training path -------------------------------------------------------------------------------------------

    def forward_train(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mode: str,
        token_weight: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Full sequence from position 0 with explicit probabilities -> (out [B, S, dim], indexer loss)."""
        bsz, seqlen, _ = x.shape
        q_nope, q_pe, latent, qr = self._project(x, cos, sin)
        k, v = self._expand(latent)  # [B, S, H, nope + R], [B, S, H, v_dim]
        q = torch.cat((q_nope, q_pe), dim=-1)
        scores = torch.einsum("bshd,bthd->bhst", q, k) * self.softmax_scale  # [B, H, S, S]
        allowed = torch.ones(seqlen, seqlen, dtype=torch.bool, device=x.device).tril().expand(bsz, -1, -1)
        index = None
        if mode != "dense":
            q_idx, w_idx = self.indexer.queries(x, qr, cos, sin)
            index = index_scores(q_idx, w_idx, self.indexer.keys(x, cos, sin))  # [B, S, S]
            index = index.masked_fill(~allowed, float("-inf"))
            if mode == "sparse":
                idx, valid = select_topk(index.detach(), self.topk)
                allowed = torch.zeros_like(allowed).scatter_(-1, idx, valid)  # selected and visible
        probs = scores.masked_fill(~allowed.unsqueeze(1), float("-inf")).softmax(dim=-1)
        out = torch.einsum("bhst,bthd->bshd", probs, v)  # [B, S, H, v_dim]
        if index is None:
            loss = x.new_zeros(())
        else:
            loss = indexer_kl_loss(probs.sum(dim=1), index, allowed, token_weight)
        return self.wo(out.flatten(2)), loss

    def forward_fused(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mode: str,
        token_weight: torch.Tensor | None = None, *, focus: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """`forward_train` arranged for speed -> (out, indexer loss, focus loss); what training runs.

        The main attention runs in the fused kernel (causal, or with the top-k selection as its mask), so no
        [B, H, S, S] probabilities are kept for the backward pass; the indexer's part is `dsa.indexer_training_losses`
        (its target computed without a graph). dense: no indexer work, both losses 0. `focus` (sparse only): the
        `attention_focus_loss`, with gradient into the main attention's queries and keys; else 0.
        """
        q_nope, q_pe, latent, qr = self._project(x, cos, sin)
        k, v = self._expand(latent)
        q = torch.cat((q_nope, q_pe), dim=-1)
        allowed, loss, focus_loss = None, torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        if mode != "dense":
            topk = self.topk if mode == "sparse" else None
            allowed, loss, focus_loss = indexer_training_losses(
                self.indexer, x, qr, cos, sin, q, k, self.softmax_scale, topk, token_weight, focus=focus
            )
        qh, kh, vh = self._heads_first(q, k, v)
        if allowed is None:
            o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=self.softmax_scale)
        else:
            o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed.unsqueeze(1), scale=self.softmax_scale)
        return self.wo(o.transpose(1, 2)[..., : self.v_dim].flatten(2)), loss, focus_loss

    @torch.no_grad()
    def attention_map(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What top-k recall compares, on a full sequence from position 0: (the dense attention probabilities
        averaged over heads [B, S, S], the indexer's scores [B, S, S] with -inf on future tokens)."""
        q_nope, q_pe, latent, qr = self._project(x, cos, sin)
        k, _ = self._expand(latent)
        seqlen = x.shape[1]
        causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=x.device).tril().unsqueeze(0)
        scores = torch.einsum("bshd,bthd->bhst", torch.cat((q_nope, q_pe), dim=-1), k) * self.softmax_scale
        mass = scores.masked_fill(~causal.unsqueeze(1), float("-inf")).softmax(-1).sum(1) / self.n_heads
        q_idx, w_idx = self.indexer.queries(x, qr, cos, sin)
        index = index_scores_batched(q_idx, w_idx, self.indexer.keys(x, cos, sin))
        return mass, index.masked_fill(~causal, float("-inf"))


def _blocks(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` covering range(n)."""
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


class MLP(nn.Module):
    """SwiGLU feed-forward."""

    def __init__(self, dim: int, inter_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, inter_dim, bias=False)
        self.w2 = nn.Linear(inter_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, inter_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: DSAConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = MLA(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = MLP(cfg.dim, cfg.inter_dim)

    def forward(self, x: torch.Tensor, step: Step, layer: int) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), step, layer)
        return x + self.ffn(self.ffn_norm(x))


class TrainOutput(NamedTuple):
    logits: torch.Tensor  # [B, S, vocab]; log-probabilities with a copy head
    indexer_loss: torch.Tensor  # scalar: sum over layers of the mean per-token KL (0 in dense mode)


class DSATransformer(nn.Module):
    rope_cos: torch.Tensor  # [max_seq_len, R/2] buffers, shared by MLA and the indexers
    rope_sin: torch.Tensor

    def __init__(self, cfg: DSAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.prefill_block = 64  # queries per indexer block: bounds prefill memory at block x T scores
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.copy = CopyHead(cfg.dim, cfg.copy_dim, cfg.vocab_size, cfg.copy_variants) if cfg.copy_dim else None
        cos, sin = rope_tables(cfg.qk_rope_head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    @property
    def blocks(self) -> list[Block]:
        """The layers, typed."""
        return cast(list[Block], list(self.layers))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Normal(0, init_std) weights; residual output projections scaled by 1/sqrt(2 * n_layers)."""
        std = self.cfg.init_std
        for name, p in self.named_parameters():
            if p.dim() == 1:  # norm weights and biases
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            else:
                residual = name.endswith(("wo.weight", "w2.weight"))
                scale = 1 / math.sqrt(2 * self.cfg.n_layers) if residual else 1.0
                nn.init.normal_(p, 0.0, std * scale, generator=generator)
        if self.copy is not None:
            self.copy.reset_control()

    def indexer_parameters(self) -> list[nn.Parameter]:
        return [p for block in self.blocks for p in block.attn.indexer.parameters()]

    def main_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the indexers'."""
        ids = {id(p) for p in self.indexer_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def new_cache(
        self, batch_size: int, capacity: int | None = None, *, index_dtype: torch.dtype | None = None
    ) -> DSACache:
        """An empty cache for `batch_size` sequences of up to `capacity` tokens (default: max_seq_len).

        `index_dtype=torch.bfloat16` stores the indexer keys (and scores the queries against them) in bfloat16:
        the selection may differ from float32's only between tokens whose scores round together."""
        p = self.embed.weight
        return DSACache(
            self.cfg.n_layers,
            batch_size,
            capacity or self.cfg.max_seq_len,
            self.cfg.latent_dim,
            self.cfg.index_head_dim,
            dtype=p.dtype,
            index_dtype=index_dtype,
            copy_dim=self.cfg.copy_dim,
            device=p.device,
        )

    def vocab_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Normalised hidden states [..., dim] -> vocabulary logits [..., vocab] (before any copy head)."""
        return F.linear(h, self.embed.weight) if self.head is None else self.head(h)

    def _outputs_from_cache(
        self, h: torch.Tensor, cache: DSACache, rows: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Normalised hidden states h [B, S, dim] of queries at `positions` [B, S] -> [B, S, vocab]: logits, or
        with a copy head the mixed log-probabilities over the row's cached tokens (queries in blocks: [B, S, T]
        pointer scores and [B, S, vocab] outputs stay small)."""
        logits = self.vocab_logits(h)
        if self.copy is None:
            return logits
        upto = int(positions.max()) + 1
        context = token_context(cache.read_tokens(rows, upto))  # [B, T, 3]
        keys = cache.read_copy_keys(rows, upto)
        key_pos = torch.arange(upto, device=h.device)
        out = []
        for blk in _blocks(h.shape[1], self.prefill_block):
            pos = positions[:, blk]
            q_tokens = context.gather(1, pos.unsqueeze(-1).expand(-1, -1, 3))[..., :2]  # [B, Sb, 2]
            visible = key_pos.view(1, 1, -1) <= pos.unsqueeze(-1)
            out.append(self.copy.log_probs(h[:, blk], logits[:, blk], q_tokens, keys, context, visible))
        return torch.cat(out, dim=1)

    def forward(
        self,
        tokens: torch.Tensor,
        cache: DSACache | None = None,
        *,
        mode: AttnMode = "sparse",
        rows: torch.Tensor | None = None,
        n_new: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Run new tokens through the model, appending them to each sequence in the cache.

        tokens [B, S]: row b continues the sequence held in cache row rows[b] (rows defaults to 0..B-1) at
        position cache.lengths[rows[b]]. n_new [B] (default S): how many of the S tokens of each row are real;
        the rest is right padding whose outputs are garbage and which is not committed (the row's length grows
        by n_new only). Without a cache, a throw-away one is used (a plain causal forward from position 0).
        Returns logits [B, S, vocab], or [B, vocab] for each row's last real token when last_only is set.
        """
        if mode not in ATTN_MODES:
            raise ValueError(f"unknown attention mode {mode!r}; use one of {ATTN_MODES}")
        bsz, seqlen = tokens.shape
        if cache is None:
            cache = self.new_cache(bsz, seqlen)
        rows = cache.row_index(rows, bsz)
        n_new = torch.full((bsz,), seqlen, dtype=torch.long) if n_new is None else n_new.to(torch.long)
        if n_new.shape != (bsz,) or bool((n_new < 0).any()) or bool((n_new > seqlen).any()):
            raise ValueError(f"n_new must hold one count in [0, {seqlen}] per sequence, got {n_new.tolist()}")
        cache.check_room(rows, seqlen)
        start = cache.lengths[rows]  # [B]
        positions = start.unsqueeze(1) + torch.arange(seqlen, device=tokens.device)  # [B, S]
        if int(positions.max()) >= self.cfg.max_seq_len:
            raise CacheCapacityError(
                f"position {int(positions.max())} is past the model's max_seq_len ({self.cfg.max_seq_len})"
            )
        step = Step(
            mode=mode,
            cache=cache,
            rows=rows,
            positions=positions,
            cos=self.rope_cos[positions],
            sin=self.rope_sin[positions],
            fresh=bool((start == 0).all()),
            block=self.prefill_block,
        )
        h = self.embed(tokens)  # [B, S, dim]
        for i, block in enumerate(self.blocks):
            h = block(h, step, i)
        h = self.norm(h)
        if self.copy is not None:
            cache.write_tokens(rows, positions, tokens, self.copy.keys(h))
        cache.advance(rows, n_new)
        if last_only:
            last = (n_new - 1).clamp_min(0).unsqueeze(1)  # [B, 1]
            h = h.gather(1, last.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
            return self._outputs_from_cache(h, cache, rows, positions.gather(1, last))[:, 0]  # [B, vocab]
        return self._outputs_from_cache(h, cache, rows, positions)

    def forward_train(
        self, tokens: torch.Tensor, *, mode: AttnMode = "sparse", token_weight: torch.Tensor | None = None
    ) -> TrainOutput:
        """Training forward over whole sequences [B, S] from position 0, with the indexer loss.

        dense: no indexer work, loss 0. dense+indexer: dense attention, KL over all visible tokens (warm-up).
        sparse: attention over the top-k selection, KL over the selected set. The indexer sees detached inputs,
        so backpropagating LM loss + indexer loss trains each part with its own loss only.
        token_weight [B, S] weighs query tokens in the indexer loss (0 for padding).
        """
        h, loss, _ = self.train_hidden_states(tokens, mode=mode, token_weight=token_weight)
        seqlen = tokens.shape[1]
        logits = self.vocab_logits(h)
        if self.copy is not None:
            context = token_context(tokens)
            visible = torch.ones(seqlen, seqlen, dtype=torch.bool, device=h.device).tril().expand(h.shape[0], -1, -1)
            logits = self.copy.log_probs(h, logits, context[..., :2], self.copy.keys(h), context, visible)
        return TrainOutput(logits, loss)

    def train_hidden_states(
        self, tokens: torch.Tensor, *, mode: str = "sparse", token_weight: torch.Tensor | None = None,
        fused: bool = False, focus: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """`forward_train` up to the final norm -> (hidden states [B, S, dim], indexer loss summed over layers, focus
        loss averaged over layers). What a training step needs: its LM loss computes logits only where a token
        carries weight. `fused`: the attention through `MLA.forward_fused` (fast, what training runs) instead of
        the explicit probabilities of `MLA.forward_train` (the reference); `focus` needs it."""
        if mode not in ATTN_MODES:
            raise ValueError(f"unknown attention mode {mode!r}; use one of {ATTN_MODES}")
        if focus and not fused:
            raise ValueError("the focus loss is computed on the fused path only (fused=True)")
        seqlen = tokens.shape[1]
        if seqlen > self.cfg.max_seq_len:
            raise CacheCapacityError(f"{seqlen} tokens exceed the model's max_seq_len ({self.cfg.max_seq_len})")
        cos, sin = self.rope_cos[None, :seqlen], self.rope_sin[None, :seqlen]  # [1, S, R/2]: same for every row
        h = self.embed(tokens)
        index_loss, focus_loss = h.new_zeros(()), h.new_zeros(())
        for block in self.blocks:
            x = block.attn_norm(h)
            if fused:
                out, layer_loss, layer_focus = block.attn.forward_fused(x, cos, sin, mode, token_weight, focus=focus)
            else:
                out, layer_loss = block.attn.forward_train(x, cos, sin, mode, token_weight)
            h = h + out
            if mode != "dense":
                index_loss = index_loss + layer_loss
                if fused:
                    focus_loss = focus_loss + layer_focus / len(self.blocks)
            h = h + block.ffn(block.ffn_norm(h))
        return self.norm(h), index_loss, focus_loss

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, on a dense forward over whole sequences [B, S] from position 0: `MLA.attention_map` (the
        attention probabilities averaged over heads, the indexer's scores), one layer at a time."""
        seqlen = tokens.shape[1]
        cos, sin = self.rope_cos[None, :seqlen], self.rope_sin[None, :seqlen]
        h = self.embed(tokens)
        for block in self.blocks:
            x = block.attn_norm(h)
            yield block.attn.attention_map(x, cos, sin)
            h = h + block.attn.forward_fused(x, cos, sin, "dense")[0]
            h = h + block.ffn(block.ffn_norm(h))
