"""Top-k recall per layer (`layer_topk_recalls`), the figure that says where the dense attention mass that top-k
drops is: checked against a layer whose attention is uniform by construction, where the answer is known exactly."""

from __future__ import annotations

import pytest
import torch

from agentkit.backends.local.model import DSAConfig, DSATransformer
from agentkit.training.data import Example
from agentkit.training.metrics import layer_topk_recalls, topk_recalls

K = 4
CFG = DSAConfig(vocab_size=64, dim=32, n_layers=3, n_heads=2, inter_dim=64, q_lora_rank=16, kv_lora_rank=16,
                qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=12, index_n_heads=2, index_head_dim=8,
                index_topk=K, max_seq_len=64)  # fmt: skip


def _examples() -> list[Example]:
    g = torch.Generator().manual_seed(3)
    lengths = (19, 27, 3)  # the last sees at most K tokens everywhere: it counts for nothing
    return [Example(f"t{n}", "f", 1, torch.randint(0, 64, (n,), generator=g).tolist(), [True] * n) for n in lengths]


def test_a_layer_that_attends_uniformly_keeps_k_of_its_visible_tokens_and_the_mean_is_the_overall_recall() -> None:
    torch.manual_seed(0)
    model = DSATransformer(CFG).eval()
    model.reset_parameters(torch.Generator().manual_seed(1))
    with torch.no_grad():
        model.blocks[0].attn.wq_b.weight.zero_()  # every query scores every key 0: uniform attention in layer 0
    examples = _examples()
    layers = layer_topk_recalls(model, examples)
    assert len(layers) == CFG.n_layers
    # a query at position p sees p + 1 tokens, any k of them hold k / (p + 1) of a uniform distribution
    shares = [K / (p + 1) for e in examples if len(e.ids) > K for p in range(K, len(e.ids))]
    assert layers[0][1] == pytest.approx(sum(shares) / len(shares), rel=1e-5)
    assert layers[0][0] == pytest.approx(layers[0][1], rel=1e-5)  # with ties, every selection is the best one
    for recall, oracle in layers:
        assert 0.0 < recall <= oracle + 1e-6 <= 1.0 + 1e-6
    assert layers[1][1] > layers[0][1]  # the random layers are not uniform
    overall = topk_recalls(model, examples)
    assert overall == pytest.approx((sum(r for r, _ in layers) / 3, sum(o for _, o in layers) / 3))
