"""Training pieces: gradient isolation between the LM loss and the indexer loss, the KL loss itself, a short dense
warm-up that actually lowers it, and the fused training path held to the reference of the same weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agentkit.backends.local.dsa import indexer_kl_loss
from agentkit.backends.local.model import DSAConfig, DSATransformer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def lm_loss(logits: torch.Tensor, toks: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), toks[:, 1:].flatten())


def grads(params: list[torch.nn.Parameter]) -> list[float]:
    return [0.0 if p.grad is None else float(p.grad.abs().max()) for p in params]


@pytest.mark.parametrize("mode", ["sparse", "dense+indexer"])
def test_lm_loss_never_reaches_the_indexer(make_model, tokens, mode):
    model = make_model()
    toks = tokens(2, 30)
    lm_loss(model.forward_train(toks, mode=mode).logits, toks).backward()
    assert max(grads(model.indexer_parameters())) == 0.0
    assert min(grads([p for p in model.main_parameters() if p.dim() > 1])) > 0.0


@pytest.mark.parametrize("mode", ["sparse", "dense+indexer"])
def test_indexer_loss_reaches_only_the_indexer(make_model, tokens, mode):
    model = make_model()
    out = model.forward_train(tokens(2, 30), mode=mode)
    assert out.indexer_loss > 0
    out.indexer_loss.backward()
    assert max(grads(model.main_parameters())) == 0.0
    assert min(grads([p for p in model.indexer_parameters() if p.dim() > 1])) > 0.0


def test_dense_mode_has_no_indexer_loss(make_model, tokens):
    out = make_model().forward_train(tokens(1, 12), mode="dense")
    assert float(out.indexer_loss) == 0.0


def test_kl_is_zero_when_the_indexer_matches_the_target_and_positive_otherwise():
    torch.manual_seed(0)
    heads, length = 4, 10
    support = torch.ones(length, length, dtype=torch.bool).tril()[None]  # causal
    probs = torch.randn(1, heads, length, length).masked_fill(~support[:, None], float("-inf")).softmax(-1)
    mass = probs.sum(dim=1)  # summed over heads, as the recipe says
    target = mass / mass.sum(-1, keepdim=True)
    matching = target.log()  # softmax(log p) = p on the support
    assert float(indexer_kl_loss(mass, matching, support)) == pytest.approx(0.0, abs=1e-6)
    assert float(indexer_kl_loss(mass, matching + 3.0, support)) == pytest.approx(0.0, abs=1e-6)  # shift-free
    off = matching + 0.5 * torch.randn_like(matching)
    assert float(indexer_kl_loss(mass, off, support)) > 1e-3

    # restricted to a selected set: mass and scores outside it do not count
    selected = support & (torch.rand(1, length, length) < 0.5)
    selected[..., 0] = True
    renorm = mass.masked_fill(~selected, 0.0)
    renorm = renorm / renorm.sum(-1, keepdim=True)
    inside = renorm.log().masked_fill(~selected, 0.0) + 100.0 * (~selected)  # junk outside the set
    assert float(indexer_kl_loss(mass, inside, selected)) == pytest.approx(0.0, abs=1e-6)
    assert float(indexer_kl_loss(mass, inside, support)) > 1.0  # the junk counts on the full support


def test_token_weights_drop_padding_from_the_indexer_loss(make_model, tokens):
    model = make_model()
    toks = tokens(1, 20)
    full = model.forward_train(toks, mode="dense+indexer").indexer_loss
    weight = torch.ones(1, 20)
    weight[:, 12:] = 0
    masked = model.forward_train(toks, mode="dense+indexer", token_weight=weight).indexer_loss
    prefix = model.forward_train(toks[:, :12], mode="dense+indexer").indexer_loss
    assert float(masked) == pytest.approx(float(prefix), rel=1e-5)  # causal: padding after is invisible
    assert float(masked) != pytest.approx(float(full), rel=1e-3)


def test_dense_warm_up_trains_the_indexer_towards_the_attention(make_model, tokens):
    """Stage 1 of the recipe: dense attention, everything frozen but the indexer, KL loss down."""
    torch.manual_seed(0)
    model = make_model(std=0.3)
    for p in model.main_parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.indexer_parameters(), lr=1e-2)
    toks = tokens(4, 32)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = model.forward_train(toks, mode="dense+indexer").indexer_loss
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0]


def test_focus_loss_is_minus_log_of_the_kept_dense_mass():
    """The focus loss is -log of the share of the dense attention mass (mean over heads) on the selected tokens,
    over the queries that see more tokens than they select: computed here by hand from the probabilities."""
    from agentkit.backends.local.dsa import attention_focus_loss

    torch.manual_seed(0)
    b, h, s = 2, 3, 9
    scores = torch.randn(b, h, s, s)
    visible = torch.ones(s, s, dtype=torch.bool).tril().expand(b, -1, -1)
    selected = visible & (torch.rand(b, s, s) < 0.5)
    selected |= torch.eye(s, dtype=torch.bool)  # every query keeps itself
    selected[:, :3] = visible[:, :3]  # the first three queries keep everything: no loss from them
    probs = scores.masked_fill(~visible.unsqueeze(1), float("-inf")).softmax(-1)
    kept = (probs * selected.unsqueeze(1)).sum(-1).mean(1)  # [b, s]
    rows = visible.sum(-1) > selected.sum(-1)
    want = -kept[rows].log().mean()
    got = attention_focus_loss(scores, visible, selected)
    assert torch.allclose(got, want, atol=1e-6), (got, want)
    assert float(attention_focus_loss(scores, visible, visible)) == 0.0  # nothing dropped: nothing to focus

    grad_scores = scores.clone().requires_grad_()
    attention_focus_loss(grad_scores, visible, selected).backward()
    g = grad_scores.grad
    assert torch.isfinite(g).all()
    assert float(g.masked_select(selected.unsqueeze(1).expand_as(g)).abs().max()) == 0.0  # kept logits untouched
    dropped = (visible & ~selected).unsqueeze(1).expand_as(g)
    assert float(g.masked_select(dropped).min()) > 0  # every dropped logit is pushed down

    weight = torch.ones(b, s)
    weight[1] = 0  # padding rows do not count
    want_b0 = -kept[0][rows[0]].log().mean()
    assert torch.allclose(attention_focus_loss(scores, visible, selected, weight), want_b0, atol=1e-6)


def test_focus_loss_trains_the_main_attention_not_the_indexer(make_model, tokens):
    """In sparse training the focus loss reaches the main attention's queries and keys (it is about what the dense
    attention looks at) and never the indexer (the selection is its input, without gradient)."""
    from agentkit.training.steps import hidden_states

    model, toks = make_model(), tokens(2, 30)
    _, _, focus = hidden_states(model, toks, "sparse", None, True)
    assert float(focus) > 0
    focus.backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.indexer_parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.main_parameters())
    _, index_plain, none = hidden_states(model, toks, "sparse", None)
    assert float(none) == 0.0
    _, index_focus, _ = hidden_states(model, toks, "sparse", None, True)
    assert torch.allclose(index_focus, index_plain, rtol=1e-5)  # the same KL target either way


FUSED_CFG = DSAConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, inter_dim=64, q_lora_rank=16, kv_lora_rank=16,
                      qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=12, index_n_heads=2, index_head_dim=8,
                      index_topk=5, max_seq_len=64)  # fmt: skip


@pytest.mark.parametrize("mode", ["dense", "dense+indexer", "sparse"])
def test_fast_attention_matches_forward_train(mode: str):
    """The fused training path (`MLA.forward_fused`, what training runs) computes what the reference with explicit
    probabilities (`MLA.forward_train`) computes on the same weights, losses and gradient isolation included."""
    torch.manual_seed(0)
    model = DSATransformer(FUSED_CFG)
    model.reset_parameters(torch.Generator().manual_seed(1))
    attn = model.blocks[0].attn
    x = torch.randn(2, 23, FUSED_CFG.dim)
    cos, sin = model.rope_cos[None, :23], model.rope_sin[None, :23]
    weight = torch.ones(2, 23)
    weight[1, 17:] = 0  # padding
    want, want_loss = attn.forward_train(x, cos, sin, mode, weight)
    got, got_loss, _ = attn.forward_fused(x, cos, sin, mode, weight)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert math.isclose(float(got_loss.detach()), float(want_loss.detach()), rel_tol=1e-4, abs_tol=1e-6)
    if mode != "dense":  # the indexer loss trains the indexer and nothing else
        got_loss.backward()
        assert all(p.grad is None for p in model.main_parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.indexer_parameters())


@pytest.mark.parametrize("mode", ["dense", "dense+indexer", "sparse"])
def test_fused_training_forward_matches_the_reference(make_model, tokens, mode):
    """Over the whole model: the hidden states and indexer loss of the fused path equal the reference's."""
    model, toks = make_model(), tokens(2, 30)
    weight = torch.ones(2, 30)
    weight[1, 21:] = 0
    want_h, want_loss, _ = model.train_hidden_states(toks, mode=mode, token_weight=weight)
    got_h, got_loss, _ = model.train_hidden_states(toks, mode=mode, token_weight=weight, fused=True)
    assert torch.allclose(got_h, want_h, atol=1e-4), (got_h - want_h).abs().max()
    assert math.isclose(float(got_loss), float(want_loss), rel_tol=1e-4, abs_tol=1e-6)
