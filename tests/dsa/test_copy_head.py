"""The copy head: its output is a distribution, it continues a repeated sequence from initialisation, training
computes the same probabilities as inference, and it learns copying that the vocabulary head alone does not."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agentkit.backends.local import copy_head
from agentkit.backends.local.cache import DSACache
from agentkit.backends.local.model import DSAConfig, DSATransformer
from agentkit.training.steps import hidden_states, lm_loss

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = DSAConfig(
    vocab_size=61, dim=32, n_layers=2, inter_dim=64, n_heads=4, q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8,
    qk_rope_head_dim=8, v_head_dim=12, index_n_heads=3, index_head_dim=16, index_topk=8, max_seq_len=512,
)  # fmt: skip


def fresh(copy_dim: int, seed: int = 0, **changes: object) -> DSATransformer:
    """A model with the library's own initialisation (small weights: the copy head's structure, not luck)."""
    torch.manual_seed(seed)
    model = DSATransformer(dataclasses.replace(TINY, copy_dim=copy_dim, **changes))  # type: ignore[arg-type]
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


def repeat_task(batch: int, half: int, vocab: int, seed: int) -> torch.Tensor:
    """Rows of `half` distinct random tokens, then the same tokens again: the second half is predictable only by
    copying from the first."""
    gen = torch.Generator().manual_seed(seed)
    first = torch.stack([torch.randperm(vocab, generator=gen)[:half] for _ in range(batch)])
    return torch.cat((first, first), dim=1)


@torch.no_grad()
def test_outputs_are_log_probabilities():
    model = fresh(8)
    out = model(torch.randint(0, TINY.vocab_size, (2, 30)), mode="dense")
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 30), atol=1e-5)


@torch.no_grad()
def test_an_untrained_copy_head_already_continues_a_repeated_sequence():
    """The match features make induction available at step 0: in the repeated half, the next token is the one
    that followed the current token the first time. Without the head, an untrained model is at chance."""
    toks = repeat_task(1, 20, TINY.vocab_size, seed=3)
    nxt = toks[0, 21:]  # targets of positions 20..38
    p_copy = fresh(8)(toks, mode="dense")[0, 20:-1].gather(-1, nxt[:, None]).exp()
    p_plain = fresh(0)(toks, mode="dense")[0, 20:-1].log_softmax(-1).gather(-1, nxt[:, None]).exp()
    # gate 1/2 x the pointer's mass on the right position: about half of it on a unigram match alone (the first
    # repeated token), most of it once the bigram matches too
    assert float(p_copy[0]) > 0.2
    assert float(p_copy[1:].min()) > 0.35
    assert float(p_plain.max()) < 0.1


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_training_loss_is_the_inference_distributions_cross_entropy(mode):
    """lm_loss (labels only, fused attention) against -log p of forward_train's full output (explicit maths)."""
    model = fresh(8, seed=1)
    with torch.no_grad():  # make every part matter: peaked attention, gate away from 1/2
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    ids = torch.randint(0, TINY.vocab_size, (2, 31), generator=torch.Generator().manual_seed(2))
    weight = torch.ones(2, 31)
    weight[1, 20:] = 0.0  # padding
    weight[0, :5] = 0.3  # context tokens
    h, *_ = hidden_states(model, ids, mode, weight)
    loss, _ = lm_loss(model, h, ids, weight)
    logp = model.forward_train(ids, mode=mode).logits[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    w = weight[:, 1:]
    want = -(logp * w).sum() / w.sum()
    assert torch.allclose(loss, want, atol=1e-5), (float(loss), float(want))


def train_on_repeats(copy_dim: int, steps: int, variants: int = 1, respell: bool = False) -> float:
    """Train a fresh model on the repeat task; the mean loss of the repeated half on held-out rows. `respell`: the
    repeat is written in the other spelling (`SPELLINGS`), which the model is told with `variants` 3."""
    model = fresh(copy_dim, seed=4, n_layers=1, copy_variants=variants)
    if variants > 1:
        model.copy.set_variants(SPELLINGS)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        ids = repeat_task(16, 16, TINY.vocab_size, seed=100 + step)
        if respell:
            ids = respelled(ids)
        weight = torch.zeros_like(ids, dtype=torch.float)
        weight[:, 17:] = 1.0  # only the predictable tokens carry loss
        h, *_ = hidden_states(model, ids, "dense", None)
        loss, _ = lm_loss(model, h, ids, weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        ids = repeat_task(32, 16, TINY.vocab_size, seed=7)
        if respell:
            ids = respelled(ids)
        weight = torch.zeros_like(ids, dtype=torch.float)
        weight[:, 17:] = 1.0
        h, *_ = hidden_states(model, ids, "dense", None)
        return float(lm_loss(model, h, ids, weight)[0])


def test_the_copy_head_learns_to_copy_what_the_vocabulary_head_cannot_in_the_same_steps():
    with_head, without = train_on_repeats(8, 40), train_on_repeats(0, 40)
    assert with_head < 0.3, with_head
    assert without > 2.0, (
        without
    )  # chance is ln(61) ~ 4.1; the plain model has not formed an induction circuit


HALF_VOCAB = TINY.vocab_size // 2
SPELLINGS = torch.tensor([[t, t + HALF_VOCAB if t < HALF_VOCAB else t, t - HALF_VOCAB if HALF_VOCAB <= t < 2 * HALF_VOCAB
                           else t] for t in range(TINY.vocab_size)])  # fmt: skip
"""Token t < 30 stands for " word" and t + 30 for "word": a spelling table as `spelling_variants` builds one."""


def respelled(ids: torch.Tensor) -> torch.Tensor:
    """Repeat-task rows over the spaced half of the vocabulary, the repeat in the unspaced spelling."""
    ids = ids % HALF_VOCAB
    half = ids.shape[1] // 2
    return torch.cat((ids[:, :half], ids[:, half:] + HALF_VOCAB), dim=1)


def test_spelling_variants_pair_tokens_with_and_without_a_leading_space():
    table = copy_head.spelling_variants([b"", b"Ravi", b" Ravi", b" Moreau", b" ", b"42", b" 42"])
    assert table[2].tolist() == [2, 1, 2]  # " Ravi": without its space "Ravi"
    assert table[1].tolist() == [1, 1, 2]  # "Ravi": with a space " Ravi"
    assert table[3].tolist() == [3, 3, 3]  # no "Moreau" in the vocabulary: itself
    assert table[4].tolist() == [4, 4, 4]  # a lone space has no spelling without it
    assert table[0].tolist() == [0, 0, 0]  # special tokens have none
    assert table[5].tolist() == [5, 5, 6]


def test_a_pointer_with_spellings_copies_a_word_written_the_other_way():
    """Diagnosis of the shipped model: names read as " Ravi" must be written as "Ravi" (a different BPE token), so
    a pointer that outputs only the token it points at cannot copy them. With the spelling variants it learns to
    in the same 40 steps; without them it cannot (the induction features also match across spellings)."""
    spelled, plain = train_on_repeats(8, 40, variants=3, respell=True), train_on_repeats(8, 40, respell=True)
    assert spelled < 0.5, spelled
    assert plain > 1.5, plain


def test_checkpoints_without_a_copy_head_still_load_and_the_cache_counts_its_bytes():
    stored = {
        k: v for k, v in TINY.to_dict().items() if k != "copy_dim"
    }  # a config from before the copy head
    assert DSAConfig.from_dict(stored).copy_dim == 0
    assert DSATransformer(DSAConfig.from_dict(stored)).copy is None
    with pytest.raises(ValueError, match="copy_dim"):
        dataclasses.replace(TINY, copy_dim=-1)
    with pytest.raises(ValueError, match="copy_variants"):
        dataclasses.replace(TINY, copy_dim=8, copy_variants=4)
    model = fresh(8)
    per_token = model.new_cache(1, 4).bytes_per_token()
    assert per_token["copy"] == 8 * 4 + 8  # float32 pointer key and the int64 token id
    assert per_token["total"] == per_token["latent"] + per_token["index"] + per_token["copy"]
    assert isinstance(model.new_cache(1, 4), DSACache)


@pytest.mark.parametrize("variants", [1, 3])
def test_the_chunked_training_pointer_has_autograds_gradient(monkeypatch, variants):
    """copy_label_log_probs (chunked, hand-written backward) against the same mixture built from `pointer()` and
    differentiated by autograd: values and the gradients of the hidden states, logits and every head weight."""
    monkeypatch.setattr(copy_head, "COPY_CHUNK", 7)  # several chunks, one of them skipped (no active query)
    torch.manual_seed(0)
    bsz, seqlen, dim, vocab = 2, 30, 16, 11
    head = copy_head.CopyHead(dim, 8, vocab, variants)
    head.reset_control()
    if variants > 1:
        head.set_variants(torch.randint(0, vocab, (vocab, 3)))
        with torch.no_grad():
            head.control.bias[3:] = torch.tensor([0.5, -0.7])  # every spelling's gate matters, unequally
    h = torch.randn(bsz, seqlen, dim, requires_grad=True)
    ids = torch.randint(0, vocab, (bsz, seqlen))
    pred = torch.rand(bsz, seqlen - 1) > 0.3
    pred[:, :8] = False
    logits = torch.randn(int(pred.sum()), vocab, requires_grad=True)
    wrt = [h, logits, *head.parameters()]

    got = copy_head.copy_label_log_probs(head, h, ids, pred, logits)
    context = copy_head.token_context(ids)
    visible = torch.ones(seqlen - 1, seqlen, dtype=torch.bool).tril().expand(bsz, -1, -1)
    attn, gate = head.pointer(h[:, :-1], context[:, :-1, :2], head.keys(h), context[..., 1:], visible)
    labels = ids[:, 1:]
    spelled = head.variant_ids[ids]  # [B, S, variants]
    hit = (attn.unsqueeze(-1) * (spelled.unsqueeze(1) == labels[..., None, None])).sum(-2)  # [B, S - 1, variants]
    copied = (hit * gate[..., 1:].exp()).sum(-1)
    vocab_lp = logits.log_softmax(-1).gather(-1, labels[pred].unsqueeze(-1))
    want = copy_head.CopyHead.mix(vocab_lp, gate[pred][:, :1], copied[pred].unsqueeze(-1)).squeeze(-1)

    assert torch.allclose(got, want, atol=1e-6)
    for g_got, g_want in zip(
        torch.autograd.grad(got.sum(), wrt), torch.autograd.grad(want.sum(), wrt), strict=True
    ):
        assert g_want.abs().max() > 0
        assert torch.allclose(g_got, g_want, atol=1e-5), (g_got - g_want).abs().max()
