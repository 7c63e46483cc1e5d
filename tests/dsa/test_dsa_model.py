"""The DSA transformer's three attention modes, its cache, and how they relate."""

from __future__ import annotations

import pytest
import torch

from agentkit.backends.local import CacheCapacityError, DSACache

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
WITH_AND_WITHOUT_COPY_HEAD = pytest.mark.parametrize(
    "head", [{}, {"copy_dim": 8}, {"copy_dim": 8, "copy_variants": 3}], ids=["logits", "copy_head", "copy_spellings"]
)


def decode_all(model, toks, cache, mode, prefill):
    """Prefill `prefill` tokens, then feed the rest one at a time; the logits of every position."""
    out = [model(toks[:, :prefill], cache, mode=mode)]
    for t in range(prefill, toks.shape[1]):
        out.append(model(toks[:, t : t + 1], cache, mode=mode))
    return torch.cat(out, dim=1)


@torch.no_grad()
def test_sparse_equals_dense_when_k_covers_the_context(make_model, tokens):
    model = make_model(index_topk=64)
    toks = tokens(2, 40)
    dense = decode_all(model, toks, model.new_cache(2, 40), "dense", prefill=24)
    sparse = decode_all(model, toks, model.new_cache(2, 40), "sparse", prefill=24)
    assert dense.abs().max() > 1.0  # the tolerance below means something
    assert (dense - sparse).abs().max() <= 1e-5


@torch.no_grad()
def test_sparse_differs_from_dense_when_k_is_below_the_context(make_model, tokens):
    model = make_model(index_topk=6)
    toks = tokens(1, 40)
    dense, sparse = model(toks, mode="dense"), model(toks, mode="sparse")
    assert (dense[:, :6] - sparse[:, :6]).abs().max() <= 1e-5  # k covers the first 6 positions
    assert (dense[:, 6:] - sparse[:, 6:]).abs().amax(dim=-1).min() > 1e-3  # every later position is pruned


@WITH_AND_WITHOUT_COPY_HEAD
@pytest.mark.parametrize("mode", ["dense", "sparse", "dense+indexer"])
@torch.no_grad()
def test_prefill_then_decode_gives_the_full_forward_logits(make_model, tokens, mode, head):
    model = make_model(**head)  # k = 8 < T: the selection is real
    toks = tokens(2, 37)
    full = model(toks, mode=mode)
    stepwise = decode_all(model, toks, model.new_cache(2, 64), mode, prefill=13)
    assert (full - stepwise).abs().max() <= 1e-4


@WITH_AND_WITHOUT_COPY_HEAD
@pytest.mark.parametrize("mode", ["dense", "sparse"])
@torch.no_grad()
def test_prefill_in_chunks_matches_one_prefill(make_model, tokens, mode, head):
    model = make_model(**head)
    toks = tokens(1, 30)
    cache = model.new_cache(1, 30)
    chunks = [model(toks[:, a:b], cache, mode=mode) for a, b in ((0, 11), (11, 12), (12, 30))]
    assert (torch.cat(chunks, dim=1) - model(toks, mode=mode)).abs().max() <= 1e-4
    assert int(cache.lengths[0]) == 30


@WITH_AND_WITHOUT_COPY_HEAD
@pytest.mark.parametrize("mode", ["dense", "sparse"])
@torch.no_grad()
def test_batched_decoding_equals_one_by_one(make_model, tokens, mode, head):
    model = make_model(**head)
    lengths = [9, 23, 16]
    prompts = [tokens(1, n, seed=i)[0] for i, n in enumerate(lengths)]
    steps = 6
    follow = tokens(3, steps, seed=99)

    # one by one
    alone = []
    for prompt, nxt in zip(prompts, follow, strict=True):
        cache = model.new_cache(1, 40)
        logits = [model(prompt[None], cache, mode=mode, last_only=True)]
        logits += [model(nxt[None, t : t + 1], cache, mode=mode, last_only=True) for t in range(steps)]
        alone.append(torch.stack(logits, dim=1))  # [1, steps + 1, vocab]

    # together: one right-padded prefill, then batched steps with rows at different lengths
    padded = torch.zeros(3, max(lengths), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        padded[i, : len(prompt)] = prompt
    cache = model.new_cache(3, 40)
    logits = [model(padded, cache, mode=mode, n_new=torch.tensor(lengths), last_only=True)]
    assert cache.lengths.tolist() == lengths
    logits += [model(follow[:, t : t + 1], cache, mode=mode, last_only=True) for t in range(steps)]
    together = torch.stack(logits, dim=1)  # [3, steps + 1, vocab]

    assert (together - torch.cat(alone)).abs().max() <= 1e-4


@WITH_AND_WITHOUT_COPY_HEAD
@torch.no_grad()
def test_a_new_sequence_joins_a_running_batch_through_rows(make_model, tokens, head):
    model = make_model(**head)
    a, b, c = tokens(1, 12, seed=1), tokens(1, 20, seed=2), tokens(1, 7, seed=3)
    cache = model.new_cache(2, 40)
    model(a, cache, rows=[0], mode="sparse")
    model(b, cache, rows=[1], mode="sparse")
    cache.reset([0])  # sequence a finished; c takes its row while b keeps decoding
    got_c = model(c, cache, rows=[0], mode="sparse", last_only=True)
    step = model(torch.tensor([[5], [6]]), cache, mode="sparse", last_only=True)

    ref_c = model(c, mode="sparse")[:, -1]
    ref_b = model(torch.cat((b, torch.tensor([[6]])), dim=1), mode="sparse")[:, -1]
    ref_c_next = model(torch.cat((c, torch.tensor([[5]])), dim=1), mode="sparse")[:, -1]
    assert (got_c - ref_c).abs().max() <= 1e-4
    assert (step[1] - ref_b[0]).abs().max() <= 1e-4
    assert (step[0] - ref_c_next[0]).abs().max() <= 1e-4
    assert cache.lengths.tolist() == [8, 21]


@WITH_AND_WITHOUT_COPY_HEAD
@pytest.mark.parametrize("mode", ["dense", "sparse"])
@torch.no_grad()
def test_decoding_a_subset_of_rows_in_any_order(make_model, tokens, mode, head):
    model = make_model(**head)
    prompts = [tokens(1, n, seed=10 + n) for n in (14, 9, 21)]
    cache = model.new_cache(3, 40)
    for row, prompt in enumerate(prompts):
        model(prompt, cache, rows=[row], mode=mode)
    step = tokens(2, 1, seed=5)
    got = model(step, cache, rows=torch.tensor([2, 0]), mode=mode, last_only=True)  # row 1 sits this one out
    assert cache.lengths.tolist() == [15, 9, 22]
    for i, row in enumerate((2, 0)):
        ref = model(torch.cat((prompts[row], step[i : i + 1]), dim=1), mode=mode)[:, -1]
        assert (got[i] - ref[0]).abs().max() <= 1e-4


class RecordingCache(DSACache):
    """A real cache that also records how much of itself each attention read touched."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.whole_reads: list[tuple[int, ...]] = []
        self.gathers: list[tuple[int, ...]] = []

    def read_latent(self, layer, rows, upto):
        out = super().read_latent(layer, rows, upto)
        self.whole_reads.append(tuple(out.shape))
        return out

    def gather_latent(self, layer, rows, positions):
        out = super().gather_latent(layer, rows, positions)
        self.gathers.append(tuple(out.shape))
        return out


@torch.no_grad()
def test_sparse_decoding_reads_only_k_latents_per_query(make_model, tokens):
    model = make_model()
    cfg = model.cfg
    cache = RecordingCache(cfg.n_layers, 2, 64, cfg.latent_dim, cfg.index_head_dim)
    model(tokens(2, 50), cache, mode="sparse")
    cache.whole_reads.clear(), cache.gathers.clear()
    model(tokens(2, 1), cache, mode="sparse")
    assert cache.whole_reads == []  # the attention never touched the full latent cache
    assert cache.gathers == [(2, 1, cfg.index_topk, cfg.latent_dim)] * cfg.n_layers

    model(tokens(2, 1), cache, mode="dense")  # the dense reference reads everything
    assert cache.whole_reads == [(2, 52, cfg.latent_dim)] * cfg.n_layers


def test_cache_stores_the_mla_latent_and_the_indexer_key(make_model):
    model = make_model()
    cfg = model.cfg
    per_token = model.new_cache(1, 8).bytes_per_token()
    assert per_token["latent"] == cfg.n_layers * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 4
    assert per_token["index"] == cfg.n_layers * cfg.index_head_dim * 4


@torch.no_grad()
def test_full_cache_is_refused_with_a_clear_message(make_model, tokens):
    model = make_model()
    cache = model.new_cache(1, 10)
    model(tokens(1, 8), cache)
    with pytest.raises(CacheCapacityError, match="larger cache"):
        model(tokens(1, 3), cache)
    assert int(cache.lengths[0]) == 8  # nothing was committed


def test_unknown_mode_and_wrong_rows_are_refused(make_model, tokens):
    model = make_model()
    with pytest.raises(ValueError, match="unknown attention mode"):
        model(tokens(1, 4), mode="sparse-ish")
    with pytest.raises(ValueError, match="rows="):
        model(tokens(2, 4), model.new_cache(3, 8))
    with pytest.raises(ValueError, match="distinct cache rows"):
        model(tokens(2, 4), model.new_cache(3, 8), rows=[1, 1])
    with pytest.raises(ValueError, match="n_new"):
        model(tokens(2, 4), model.new_cache(2, 8), n_new=torch.tensor([4, 5]))


@WITH_AND_WITHOUT_COPY_HEAD
@pytest.mark.parametrize("mode", ["dense", "sparse", "dense+indexer"])
@torch.no_grad()
def test_training_path_computes_the_same_logits_as_inference(make_model, tokens, mode, head):
    """forward_train (explicit probabilities, sparsity as a mask) vs forward (fused dense / gathered sparse)."""
    model = make_model(**head)
    toks = tokens(2, 33)
    assert (model.forward_train(toks, mode=mode).logits - model(toks, mode=mode)).abs().max() <= 1e-4


@torch.no_grad()
def test_bfloat16_indexer_keys_select_what_their_rounded_scores_rank_highest(make_model, tokens):
    """A cache with bfloat16 indexer keys halves their bytes; the selection is then the exact top-k of the scores of
    the rounded keys and queries (checked against the plain formula), and with k >= T sparse still equals dense."""
    from agentkit.backends.local.dsa import select_topk

    model = make_model()  # k = 8 < T
    cfg = model.cfg
    toks = tokens(2, 30)
    cache = model.new_cache(2, 31, index_dtype=torch.bfloat16)
    assert cache.bytes_per_token()["index"] == cfg.n_layers * cfg.index_head_dim * 2
    model(toks, cache, mode="sparse")
    attn = model.layers[0].attn
    keys = cache.index_keys[0][:, :30]
    assert keys.dtype == torch.bfloat16
    # the next token's indexer query, computed as the model does, scored plainly in float32 from the rounded values
    picked = {}
    original = attn._select

    def spy(q_idx, w_idx, pos, step, layer):
        idx, valid = original(q_idx, w_idx, pos, step, layer)
        if layer == 0:
            picked["q"], picked["w"], picked["idx"] = q_idx, w_idx, idx
        return idx, valid

    attn._select = spy
    model(tokens(2, 1), cache, mode="sparse")
    q = picked["q"].to(torch.bfloat16).float()  # [B, 1, H, D]
    plain = torch.einsum("bshd,btd->bsht", q, torch.cat((keys, cache.index_keys[0][:, 30:31]), 1).float())
    scores = (picked["w"].unsqueeze(-1) * plain.relu()).sum(2)  # [B, 1, T]
    expect, _ = select_topk(scores, cfg.index_topk)
    assert sorted(picked["idx"].flatten().tolist()) == sorted(expect.flatten().tolist())

    wide = make_model(index_topk=64)
    dense = decode_all(wide, toks, wide.new_cache(2, 30), "dense", prefill=20)
    sparse = decode_all(wide, toks, wide.new_cache(2, 30, index_dtype=torch.bfloat16), "sparse", prefill=20)
    assert (dense - sparse).abs().max() <= 1e-5
