"""Fixtures for the DSA model tests: tiny configs and randomly initialised models with peaked attention."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Every test here needs torch (the model, or fixtures built on it): without it the whole folder skips, with the reason.
if importlib.util.find_spec("torch") is None:
    pytest.skip(
        "the DSA model tests need torch, which is not installed: pip install -e '.[local]' (`make test` installs it)",
        allow_module_level=True,
    )

import torch

from agentkit.backends.local.model import DSAConfig, DSATransformer

TINY = DSAConfig(
    vocab_size=61,
    dim=32,
    n_layers=2,
    inter_dim=64,
    n_heads=4,
    q_lora_rank=16,
    kv_lora_rank=16,
    qk_nope_head_dim=8,
    qk_rope_head_dim=8,
    v_head_dim=12,  # != nope + rope on purpose: the fused dense kernel needs padding then
    index_n_heads=3,
    index_head_dim=16,
    index_topk=8,
    max_seq_len=512,
)


def build(config: DSAConfig = TINY, *, seed: int = 0, std: float = 0.25, **changes: object) -> DSATransformer:
    """A model with weights ~ N(0, std): large enough that attention is peaked and logits are O(1-10),
    so a wrong selection or a wrong position moves the logits far beyond the tolerances."""
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    model = DSATransformer(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, std, generator=gen)
    if model.copy is not None and model.copy.variants > 1:
        model.copy.set_variants(random_spellings(config.vocab_size, gen))
    model.prefill_block = 5  # several query blocks even in short tests
    return model


def random_spellings(vocab: int, gen: torch.Generator) -> torch.Tensor:
    """A spelling table [vocab, 3] where most tokens have other spellings, so every variant path is exercised."""
    table = torch.arange(vocab).unsqueeze(-1).repeat(1, 3)
    table[:, 1:] = torch.randint(0, vocab, (vocab, 2), generator=gen)
    return table


@pytest.fixture
def make_model() -> Callable[..., DSATransformer]:
    return build


@pytest.fixture
def tokens() -> Callable[..., torch.Tensor]:
    def make(batch: int, length: int, *, seed: int = 0, vocab: int = TINY.vocab_size) -> torch.Tensor:
        return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))

    return make


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The tensors here are tiny: one intra-op thread is faster than two, and steadier on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a `torch` test (`-m "not torch"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.torch)
