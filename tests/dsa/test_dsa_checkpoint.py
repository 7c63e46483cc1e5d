"""Checkpoint I/O: config + weights in one safetensors file; a mismatching config is refused clearly."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from agentkit.backends.local import CheckpointError, load_checkpoint, read_config, save_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("tied", [True, False])
@torch.no_grad()
def test_round_trip_gives_identical_logits(make_model, tokens, tmp_path, tied):
    model = make_model(tie_embeddings=tied)
    path = save_checkpoint(model, tmp_path / "ckpt" / "model.safetensors")
    loaded = load_checkpoint(path, expected=model.cfg)
    assert loaded.cfg == model.cfg
    loaded.prefill_block = model.prefill_block  # a runtime knob, not part of the checkpoint
    toks = tokens(2, 20)
    assert torch.equal(loaded(toks, mode="sparse"), model(toks, mode="sparse"))
    assert (loaded.head is None) == tied


def test_a_checkpoint_for_another_config_is_refused_by_name(make_model, tmp_path):
    model = make_model()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    other = dataclasses.replace(model.cfg, index_topk=16, attn_rope_interleaved=False)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, expected=other)
    message = str(info.value)
    assert "index_topk: file has 8, expected 16" in message
    assert "attn_rope_interleaved" in message and "dim" not in message.replace("index_", "")
    assert read_config(path) == model.cfg  # without an expectation the file describes itself


def test_files_that_are_not_dsa_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a DSA checkpoint"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit_the_stored_config_are_refused(make_model, tmp_path):
    model = make_model()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    small = make_model(dim=16)
    bad = tmp_path / "bad.safetensors"
    save_checkpoint(small, bad)
    # graft the first file's config onto the second file's weights
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    with safe_open(str(bad), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="do not fit its own config"):
        load_checkpoint(bad)
