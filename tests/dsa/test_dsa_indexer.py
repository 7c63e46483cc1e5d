"""The lightning indexer against the score formula written out plainly, top-k selection, RoPE layouts, and the
fidelity switches (Hadamard rotation, simulated FP8)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agentkit.backends.local.dsa import (
    LightningIndexer,
    fake_quant_fp8,
    hadamard_transform,
    index_scores,
    mask_future_,
    select_topk,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

THETA = 10000.0


def angles(pos: int, rope_dim: int) -> list[float]:
    return [pos * THETA ** (-2 * i / rope_dim) for i in range(rope_dim // 2)]


def rotate_half_plain(v: torch.Tensor, pos: int) -> torch.Tensor:
    """Pair i is (v[i], v[i + d/2]), rotated by angle i (the NeoX layout), written element by element."""
    d = v.shape[-1]
    out = v.clone()
    for i, a in enumerate(angles(pos, d)):
        x, y = v[..., i], v[..., i + d // 2]
        out[..., i] = x * math.cos(a) - y * math.sin(a)
        out[..., i + d // 2] = x * math.sin(a) + y * math.cos(a)
    return out


def interleaved_plain(v: torch.Tensor, pos: int) -> torch.Tensor:
    """Pair i is (v[2i], v[2i + 1]), rotated by angle i (DeepSeek's MLA layout)."""
    out = v.clone()
    for i, a in enumerate(angles(pos, v.shape[-1])):
        x, y = v[..., 2 * i], v[..., 2 * i + 1]
        out[..., 2 * i] = x * math.cos(a) - y * math.sin(a)
        out[..., 2 * i + 1] = x * math.sin(a) + y * math.cos(a)
    return out


def naive_scores(ix: LightningIndexer, x: torch.Tensor, qr: torch.Tensor) -> torch.Tensor:
    """I[t, s] = sum_h w[t,h] * H^-0.5 * D^-0.5 * ReLU(q[t,h] . k[s]), causal, straight from the weights.

    x: [T, dim], qr: [T, q_lora] for one sequence starting at position 0 -> [T, T] with -inf above the diagonal.
    """
    n_heads, d, rope = ix.n_heads, ix.head_dim, ix.rope_dim
    length = x.shape[0]
    keys = []
    for s in range(length):
        k = F.layer_norm(x[s] @ ix.wk.weight.T, (d,), ix.k_norm.weight, ix.k_norm.bias, eps=1e-6)
        keys.append(torch.cat((rotate_half_plain(k[:rope], s), k[rope:])))
    scores = torch.full((length, length), float("-inf"))
    for t in range(length):
        q_all = (qr[t] @ ix.wq_b.weight.T).view(n_heads, d)
        w = x[t] @ ix.weights_proj.weight.T
        for s in range(t + 1):
            total = 0.0
            for h in range(n_heads):
                q = torch.cat((rotate_half_plain(q_all[h, :rope], t), q_all[h, rope:]))
                total += float(w[h]) * n_heads**-0.5 * d**-0.5 * max(float(q @ keys[s]), 0.0)
            scores[t, s] = total
    return scores


def indexer_selection(ix: LightningIndexer, x: torch.Tensor, qr: torch.Tensor, k: int, block: int):
    """The library path: queries/keys, blocked scoring with causal masking, top-k. One sequence [T, *].

    Returns per query the picked positions, their validity, and the scores row the library computed."""
    from agentkit.backends.local.rope import rope_tables

    length = x.shape[0]
    cos, sin = rope_tables(ix.rope_dim, length, THETA)
    cos, sin = cos[None], sin[None]  # [1, T, rope/2]
    keys = ix.keys(x[None], cos, sin)
    q, w = ix.queries(x[None], qr[None], cos, sin)
    picks, valids, rows = [], [], []
    for s0 in range(0, length, block):
        sl = slice(s0, min(s0 + block, length))
        pos = torch.arange(length)[None, sl]
        scores = mask_future_(index_scores(q[:, sl], w[:, sl], keys[:, : pos.max() + 1]), pos)
        rows += list(F.pad(scores[0], (0, length - scores.shape[-1]), value=float("-inf")))
        idx, valid = select_topk(scores, k)
        picks += list(idx[0])
        valids += list(valid[0])
    return picks, valids, rows


def assert_is_top_k(row: torch.Tensor, picked: torch.Tensor, valid: torch.Tensor, k: int) -> None:
    """`picked` (with its valid mask) is a top-k set of the finite entries of `row` (ties allowed)."""
    finite = row[row > float("-inf")]
    want = min(k, finite.numel())
    chosen = picked[valid]
    assert chosen.numel() == want and len(set(chosen.tolist())) == want
    expected = finite.sort(descending=True).values[:want]
    assert torch.allclose(row[chosen].sort(descending=True).values, expected, rtol=1e-5, atol=1e-6)
    assert not bool(valid.all()) or want == picked.numel()


@pytest.mark.parametrize("block", [7, 64])  # 64 queries x 3 heads: the fused ReLU-linear kernel's size
@pytest.mark.parametrize(("k", "length"), [(5, 23), (8, 6), (4, 70)])
@torch.no_grad()
def test_selection_is_the_top_k_of_the_plain_formula(k, length, block):
    torch.manual_seed(k)
    ix = LightningIndexer(dim=24, q_lora_rank=12, n_heads=3, head_dim=8, rope_dim=4)
    for p in ix.parameters():
        p.normal_(0.0, 0.5)
    x, qr = torch.randn(length, 24), torch.randn(length, 12)
    plain = naive_scores(ix, x, qr)
    picks, valids, rows = indexer_selection(ix, x, qr, k, block=block)
    for t in range(length):
        assert torch.allclose(rows[t], plain[t], rtol=1e-4, atol=1e-6)  # the scores, scales included
        assert_is_top_k(plain[t], picks[t], valids[t], k)
        assert int(valids[t].sum()) == min(k, t + 1)  # T < k: every visible token, and only those


def test_ties_at_the_kth_score_go_to_the_most_recent_tokens():
    row = torch.tensor([[[3.0, 1.0, 1.0, 5.0, 1.0, 1.0, 0.0, float("-inf")]]])
    idx, valid = select_topk(row, 4)
    assert sorted(idx[valid].tolist()) == [0, 3, 4, 5]  # 5 and 3 win, then the two latest of the 1.0 ties
    idx, valid = select_topk(row, 8)
    assert sorted(idx[valid].tolist()) == [0, 1, 2, 3, 4, 5, 6]  # fewer finite scores than k
    assert int((~valid).sum()) == 1


@pytest.mark.parametrize("length", [64, 1000, 4099])
def test_top_k_of_long_rows_is_exact_with_ties_and_masks(length):
    gen = torch.Generator().manual_seed(length)
    scores = torch.randint(
        -50, 50, (2, 8, length), generator=gen
    ).float()  # many ties; 16 rows, as in prefill
    scores[0, 0, length // 2 :] = float("-inf")
    scores[1, 2] = torch.randperm(length, generator=gen).float()  # no ties in this row
    scores[1, 2, -1] = 1e6  # and its best score sits in the last (possibly partial) chunk
    for k in (1, 7, 16):
        idx, valid = select_topk(scores.clone(), k)
        for b in range(2):
            for t in range(8):
                assert_is_top_k(scores[b, t], idx[b, t], valid[b, t], k)
        assert length - 1 in idx[1, 2].tolist()


def test_top_k_stays_exact_when_the_sampled_threshold_is_too_high():
    """Long rows pre-filter by a threshold guessed from every 16th score; here the sample sees only the best
    scores, so the guess leaves fewer than k candidates and the row must fall back to all of its scores."""
    length, k = 4096, 64
    scores = torch.rand(1, 16, length)
    scores[0, 0, ::16] += 10.0  # the sampled positions hold the best scores (of this row only)
    scores[0, 0, 5] = 20.0  # and one unsampled score beats them all
    idx, valid = select_topk(scores.clone(), k)
    for t in range(16):
        assert_is_top_k(scores[0, t], idx[0, t], valid[0, t], k)
    assert 5 in idx[0, 0].tolist()


@torch.no_grad()
def test_indexer_rope_is_rotate_half_and_mla_rope_follows_the_config(make_model):
    pos = 5
    for interleaved in (True, False):
        model = make_model(attn_rope_interleaved=interleaved)
        attn, cfg = model.blocks[0].attn, model.cfg
        rope, c_dim = cfg.qk_rope_head_dim, cfg.kv_lora_rank
        cache = model.new_cache(1, 8)
        toks = torch.arange(pos + 1)[None] % cfg.vocab_size
        model(toks, cache, mode="dense")
        x = model.blocks[0].attn_norm(model.embed(toks))[0, pos]  # layer 0's attention input at `pos`

        # indexer key: LayerNorm(wk x), rope slice first, rotate-half
        k = attn.indexer.k_norm(attn.indexer.wk(x))
        want_index = torch.cat((rotate_half_plain(k[:rope], pos), k[rope:]))
        got_index = cache.index_keys[0][0, pos]
        assert torch.allclose(got_index, want_index, atol=1e-5)
        wrong = torch.cat((interleaved_plain(k[:rope], pos), k[rope:]))
        assert not torch.allclose(got_index, wrong, atol=1e-3)

        # MLA decoupled key: the last `rope` numbers of the cached latent, in the configured layout
        k_pe = attn.wkv_a(x)[c_dim:]
        layouts = {True: interleaved_plain(k_pe, pos), False: rotate_half_plain(k_pe, pos)}
        got_pe = cache.latent[0][0, pos, c_dim:]
        assert torch.allclose(got_pe, layouts[interleaved], atol=1e-5)
        assert not torch.allclose(got_pe, layouts[not interleaved], atol=1e-3)


def test_hadamard_is_orthonormal_and_keeps_indexer_scores():
    x = torch.randn(5, 32, dtype=torch.float64)
    hx = hadamard_transform(x)
    assert torch.allclose(hadamard_transform(hx), x)  # symmetric and orthonormal: its own inverse
    assert torch.allclose(hx @ hx.T, x @ x.T)  # dot products unchanged
    with pytest.raises(ValueError, match="power-of-two"):
        hadamard_transform(torch.randn(3, 24))

    torch.manual_seed(0)
    plain = LightningIndexer(40, 16, 4, 32, 8)
    rotated = LightningIndexer(40, 16, 4, 32, 8, hadamard=True)
    rotated.load_state_dict(plain.state_dict())
    x, qr = torch.randn(1, 9, 40), torch.randn(1, 9, 16)
    cos, sin = torch.ones(1, 9, 4), torch.zeros(1, 9, 4)
    with torch.no_grad():
        a = index_scores(*plain.queries(x, qr, cos, sin), plain.keys(x, cos, sin))
        b = index_scores(*rotated.queries(x, qr, cos, sin), rotated.keys(x, cos, sin))
        assert not torch.allclose(plain.keys(x, cos, sin), rotated.keys(x, cos, sin))
    assert torch.allclose(a, b, atol=1e-5)


def test_fake_fp8_uses_power_of_two_block_scales_and_e4m3_precision():
    x = torch.randn(4, 256) * torch.logspace(-3, 3, 256)
    q = fake_quant_fp8(x)
    assert torch.equal(fake_quant_fp8(q), q)  # already on the grid: idempotent
    for blk in range(2):
        part, orig = q[:, blk * 128 : (blk + 1) * 128], x[:, blk * 128 : (blk + 1) * 128]
        amax = orig.abs().amax(dim=-1, keepdim=True)
        scale = torch.exp2(torch.ceil(torch.log2(amax / 448.0)))
        scaled = part / scale
        assert torch.equal(scaled, scaled.to(torch.float8_e4m3fn).float())  # e4m3 values times 2^n
        big = orig.abs() > scale * 2**-6  # e4m3 normal range: relative error <= 2^-4
        assert ((part - orig).abs() <= orig.abs() * 2**-4 + 1e-12)[big].all()
    assert not torch.equal(q, x)


@torch.no_grad()
def test_fp8_indexer_keys_are_the_exact_keys_up_to_fp8_rounding(make_model, tokens):
    exact = make_model(index_topk=6)
    quant = make_model(index_topk=6, index_fp8=True, index_hadamard=True)
    toks = tokens(1, 40)
    cache_a, cache_b = exact.new_cache(1, 40), quant.new_cache(1, 40)
    exact(toks, cache_a, mode="sparse"), quant(toks, cache_b, mode="sparse")
    keys_a, keys_b = cache_a.index_keys[0], cache_b.index_keys[0]
    assert not torch.equal(keys_a, keys_b)
    # same weights, so the rotated keys agree up to FP8 rounding once the rotation is undone
    assert torch.allclose(hadamard_transform(keys_b), keys_a, atol=0.1, rtol=0.07)
