"""The training loop: losses go down, an interrupted run resumes to the same weights, a compiled step computes what
an eager one does. (That the fused attention training runs computes what the model's reference `forward_train`
computes is checked with the model, in tests/dsa/test_dsa_training.py.)"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agentkit.backends.local.backend import LocalDSABackend
from agentkit.backends.local.checkpoint import load_checkpoint
from agentkit.backends.local.cpu import cpu_name, native_bf16
from agentkit.backends.local.errors import CheckpointError
from agentkit.backends.local.model import DSAConfig, DSATransformer
from agentkit.training.data import build_dataset, collate, load_dataset, save_dataset
from agentkit.training.loop import DATA_FILE, RECIPE_FILE, STATE_FILE, Trainer
from agentkit.training.manifest import STEP_COST, minutes_left, time_recipe
from agentkit.training.recipe import MACHINE_DECIDED, STAGES, TINY, TrainError, can_compile
from agentkit.training.steps import compiled_hidden_states, hidden_states, lm_loss, lr_at, stage_at


@torch.no_grad()
def test_a_few_steps_lower_the_loss(tiny_run: Path):
    log = [json.loads(line) for line in (tiny_run / "train_log.jsonl").read_text().splitlines()]
    dense = [e["lm"] for e in log if e["stage"] == "dense"]
    assert len(dense) == TINY.dense_steps
    # on the same batch (the step losses are of different batches): the trained weights against the initial ones
    _, examples = build_dataset(TINY, log=lambda _: None)
    ids, weight, _ = collate(examples[:4], pad_id=0, context_weight=TINY.context_weight)
    trained = load_checkpoint(tiny_run / "checkpoint" / "model.safetensors")
    initial = DSATransformer(trained.cfg)
    initial.reset_parameters(torch.Generator().manual_seed(TINY.seed))
    losses = [float(lm_loss(m, hidden_states(m, ids, "dense", None)[0], ids, weight)[0]) for m in (initial, trained)]
    assert losses[1] < losses[0] - 0.3, losses
    index = [e["index"] for e in log if e["stage"] == "indexer"]
    assert len(index) == TINY.indexer_steps and all(v > 0 for v in index)
    assert [e["stage"] for e in log] == ["dense"] * 6 + ["indexer"] * 2 + ["sparse"] * 2


def test_interrupted_run_resumes_to_the_same_weights(tiny_run: Path, tmp_path: Path, run_training):
    train = run_training
    # stop mid-stage (step 3 of the dense stage), then at the first sparse step: optimiser moments must survive
    assert train(TINY, tmp_path, stop_after=3) is None
    assert (tmp_path / STATE_FILE).exists() and not (tmp_path / "checkpoint").exists()
    with (tmp_path / "train_log.jsonl").open("a") as f:  # a step logged by a process killed before its next save
        f.write(json.dumps({"step": 4, "stage": "dense", "lm": 9.9, "minutes": 0.0}) + "\n")
    assert train(TINY, tmp_path, stop_after=9) is None
    ckpt = train(TINY, tmp_path)
    assert ckpt is not None
    resumed = load_file(ckpt / "model.safetensors")
    straight = load_file(tiny_run / "checkpoint" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    for name, tensor in straight.items():
        assert torch.equal(resumed[name], tensor), name
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, TINY.total_steps + 1))  # no step repeated or skipped
    assert all(e["lm"] != 9.9 for e in log)
    training = json.loads((ckpt / "manifest.json").read_text())["training"]
    assert set(training["median_step_seconds"]) == {"dense", "indexer", "sparse"}
    assert 0 < training["recipe_minutes_at_median"] <= training["train_minutes"] * 1.5


def test_a_run_in_fresh_processes_trains_the_same_weights(tiny_run: Path, tmp_path: Path, capfd):
    # 10 steps in processes of 4: steps 0-4, 4-8 and 8-10 each in a new interpreter that resumes the saved state
    threads = torch.get_num_threads()
    try:
        ckpt = Trainer(TINY, tmp_path, threads=1, progress=False, steps_per_process=4).run()
    finally:
        torch.set_num_threads(threads)
    out = capfd.readouterr().out
    assert "resuming at step 4/10" in out and "resuming at step 8/10" in out  # the later processes really resumed
    assert out.count("tasks generated") == 1  # the dataset was built once, then read from the run's cache
    assert ckpt == tmp_path / "checkpoint"
    straight = load_file(tiny_run / "checkpoint" / "model.safetensors")
    segmented = load_file(ckpt / "model.safetensors")
    assert all(torch.equal(segmented[k], v) for k, v in straight.items())
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, TINY.total_steps + 1))


def test_a_failed_training_process_says_where_the_run_stands(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the next process dies at once, as a killed one would
    with pytest.raises(TrainError, match=r"steps 0-4 exited with code 1; the run is saved at step 0 .* run again"):
        Trainer(TINY, tmp_path, threads=1, progress=False, log=lambda _: None, steps_per_process=4).run()
    assert (tmp_path / DATA_FILE).exists()  # what was done is kept: the next try starts from the cached dataset


def test_the_dataset_cache_gives_back_the_built_dataset(tmp_path: Path):
    tokenizer, examples = build_dataset(TINY, log=lambda _: None)
    save_dataset(tmp_path / DATA_FILE, tokenizer, examples, 0.5)
    loaded_tokenizer, loaded, minutes = load_dataset(tmp_path / DATA_FILE)
    assert loaded == examples and minutes == 0.5
    text = "<|User|>list /etc/app and read scheduler.conf"
    assert loaded_tokenizer.encode(text) == tokenizer.encode(text)
    assert loaded_tokenizer.vocab_size == tokenizer.vocab_size


def test_a_run_directory_refuses_another_recipe(tiny_run: Path):
    assert json.loads((tiny_run / RECIPE_FILE).read_text())["seed"] == TINY.seed
    other = TINY.__class__(**{**TINY.to_dict(), "seed": 1, "difficulties": (1,), "families": ()})
    with pytest.raises(TrainError, match="another recipe"):
        Trainer(other, tiny_run, log=lambda _: None, progress=False).run()


def test_trained_checkpoint_loads_with_its_manifest(tiny_run: Path):
    backend = LocalDSABackend(tiny_run / "checkpoint")
    manifest = json.loads((tiny_run / "checkpoint" / "manifest.json").read_text())
    assert manifest["training_data"]["generator_seed"] == TINY.data_seed
    assert manifest["training"]["steps"] == TINY.total_steps
    assert manifest["config"]["vocab_size"] == backend.transformer.cfg.vocab_size >= backend.tokenizer.vocab_size
    assert manifest["training"]["cpu"] == cpu_name() != ""  # the time figures name the machine they were measured on


def test_a_checkpoint_runs_with_the_settings_it_was_trained_for(tiny_run: Path, tmp_path: Path):
    """`agentkit eval --provider local` and every other `LocalDSABackend()` get the manifest's thinking mode, turn
    length and beam width unless told otherwise; a checkpoint without a manifest gets the plain defaults; a broken
    one says so."""
    agent = json.loads((tiny_run / "checkpoint" / "manifest.json").read_text())["agent"]
    assert agent["thinking"] is True and agent["max_tokens"] == 320 and agent["beams"] == 4
    trained = LocalDSABackend(tiny_run / "checkpoint")
    assert (trained.thinking, trained.max_tokens, trained.beams) == (True, 320, 4)
    told = LocalDSABackend(tiny_run / "checkpoint", thinking=False, max_tokens=64, beams=1)
    assert (told.thinking, told.max_tokens, told.beams) == (False, 64, 1)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (bare / name).write_bytes((tiny_run / "checkpoint" / name).read_bytes())
    plain = LocalDSABackend(bare)
    assert (plain.thinking, plain.max_tokens, plain.beams) == (False, 1024, 1)
    (bare / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable manifest"):
        LocalDSABackend(bare)


def test_time_recipe_projects_the_recipe_from_measured_steps():
    """The budget check of benchmarks/bench_train_speed.py: real steps of every stage, medians times the stages'
    steps plus the data time scaled from the sample."""
    timing = time_recipe(TINY, sample_tasks=10, steps=2)
    assert set(timing.median_step_seconds) == set(STAGES)
    assert all(0 < t < 60 for t in timing.median_step_seconds.values()), timing
    assert timing.data_minutes > 0
    expected = timing.data_minutes + sum(n * timing.median_step_seconds[s] for s, n in TINY.stage_steps()) / 60
    assert timing.minutes == pytest.approx(expected)
    dense_only = time_recipe(TINY, sample_tasks=10, steps=1, stages=("dense",))  # the bench's emulated-bf16 probe
    assert set(dense_only.median_step_seconds) == set(dense_only.stage_minutes) == {"dense"}


def test_time_left_counts_each_stage_at_its_own_step_cost():
    """The progress bar's estimate: stages not reached yet cost STEP_COST times the latest stage's step, and a stage
    once reached is counted at its own median (a 1 s dense step then a 4 s indexer step)."""
    dense = [{"stage": "dense", "minutes": (i + 1) / 60} for i in range(3)]  # 1 s a step
    assert minutes_left(TINY, []) is None
    want = (3 * 1.0 + 2 * STEP_COST["indexer"] + 2 * STEP_COST["sparse"]) / 60
    assert minutes_left(TINY, dense) == pytest.approx(want)
    rest = [{"stage": "dense", "minutes": (i + 4) / 60} for i in range(3)]
    indexer = [{"stage": "indexer", "minutes": 6 / 60 + 4 / 60}]  # 4 s
    got = minutes_left(TINY, dense + rest + indexer)
    assert got == pytest.approx((1 * 4.0 + 2 * 4.0 / STEP_COST["indexer"] * STEP_COST["sparse"]) / 60)
    done = dense + rest + indexer * 2 + [{"stage": "sparse", "minutes": 1.0}] * 2
    assert minutes_left(TINY, done) == 0


def test_schedule_covers_the_stages_and_decays():
    assert stage_at(TINY, 0) == ("dense", 0, 6)
    assert stage_at(TINY, 6) == ("indexer", 0, 2)
    assert stage_at(TINY, 9) == ("sparse", 1, 2)
    assert stage_at(TINY, 10)[0] == "done"
    lrs = [lr_at(TINY, "dense", i, 100) for i in range(100)]
    assert max(lrs) == pytest.approx(TINY.lr) and lrs[-1] < 0.2 * TINY.lr and lrs[0] < lrs[1]


CFG = DSAConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, inter_dim=64, q_lora_rank=16, kv_lora_rank=16,
                qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=12, index_n_heads=2, index_head_dim=8,
                index_topk=5, max_seq_len=64)  # fmt: skip


@pytest.mark.skipif(not can_compile(), reason="torch.compile needs a C++ compiler (the recipe then runs eager)")
@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_compiled_forward_and_backward_match_eager(mode: str):
    """`Recipe.compile` changes how a step runs, not what it computes: the compiled hidden states, indexer loss and
    every gradient equal the eager ones to float rounding, with padding in the batch. The sparse graph (top-k, the
    selection mask, the KL over the selected set) runs with k at the sequence length: with a smaller k, a near-tie
    in the indexer's scores may select differently under different rounding, a valid but other computation."""
    model = DSATransformer(dataclasses.replace(CFG, index_topk=23))
    model.reset_parameters(torch.Generator().manual_seed(1))
    ids = torch.randint(0, CFG.vocab_size, (2, 23), generator=torch.Generator().manual_seed(2))
    weight = torch.ones(2, 23)
    weight[1, 17:] = 0  # padding

    def run(forward) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        h, index_loss, _ = forward(model, ids, mode, weight)
        (h.square().mean() + index_loss).backward()
        return h.detach(), index_loss.detach(), [torch.zeros(()) if p.grad is None else p.grad.clone()
                                                 for p in model.parameters()]  # fmt: skip

    want_h, want_loss, want_grads = run(hidden_states)
    got_h, got_loss, got_grads = run(compiled_hidden_states())
    assert torch.allclose(got_h, want_h, atol=1e-5), (got_h - want_h).abs().max()
    assert math.isclose(float(got_loss), float(want_loss), rel_tol=1e-4, abs_tol=1e-6)
    assert any(g.abs().sum() > 0 for g in want_grads)
    for got, want in zip(got_grads, want_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-3), (got - want).abs().max()


def test_cli_train_resumes_a_finished_run_and_ship_copies_it(tiny_run: Path, tmp_path: Path, monkeypatch):
    from agentkit.app.cli import main
    from agentkit.training import cli

    before = load_file(tiny_run / "checkpoint" / "model.safetensors")
    assert main(["local", "train", str(tiny_run), "--tiny", "--threads", "1"]) == 0  # nothing left: re-writes it
    after = load_file(tiny_run / "checkpoint" / "model.safetensors")
    assert all(torch.equal(after[k], v) for k, v in before.items())
    # the manifest names every command and source tree that trained the run: the fixture's Trainer, then the CLI
    provenance = json.loads((tiny_run / "checkpoint" / "manifest.json").read_text())["provenance"]
    assert provenance[0]["command"] is None and provenance[-1]["command"] == f"agentkit local train {tiny_run} --tiny"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(cli.__file__).parent)
    if head.returncode == 0:  # a git checkout (an installed wheel records None)
        assert provenance[-1]["commit"] == head.stdout.strip() and isinstance(provenance[-1]["dirty"], bool)
    monkeypatch.setattr(cli, "_shipped_dir", lambda: tmp_path / "shipped")
    assert main(["local", "ship", str(tiny_run)]) == 0
    assert LocalDSABackend(tmp_path / "shipped").transformer.cfg.dim == TINY.dim
    assert main(["local", "ship", str(tmp_path / "nothing")]) != 0


ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
ZEN4 = "model name\t: AMD EPYC 9B14\nflags\t\t: avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
SAPPHIRE = "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f amx_bf16 amx_tile amx_int8\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize("cpuinfo, native", [(ZEN3, False), (ZEN4, True), (SAPPHIRE, True), (GRAVITON, True),
                                             ("", False), ("model name : avx512_bf16 in a name\n", False)])
def test_native_bf16_reads_the_cpu_flags(cpuinfo: str, native: bool):
    """Emulated bfloat16 makes a step many times slower than float32 on an AVX2 machine: the default precision follows the
    hardware, from its flags alone (a name that happens to contain a flag's spelling is not a flag)."""
    assert native_bf16(cpuinfo) is native


@pytest.mark.parametrize("name", MACHINE_DECIDED)
def test_a_run_decides_its_machine_settings_once(tmp_path: Path, name: str):
    """`bf16=None` (`compile=None`) is decided for this machine when the run directory is made, stored there, and a
    resume keeps it even where the machine would decide otherwise (one run, one precision, one execution path)."""
    here = {"bf16": native_bf16(), "compile": can_compile()}[name]
    undecided = dataclasses.replace(TINY, **{name: None})
    assert getattr(undecided.resolved(), name) is here
    fresh = Trainer(undecided, tmp_path / "new", log=lambda _: None, progress=False)
    fresh._check_recipe()
    assert getattr(fresh.recipe, name) is here
    assert json.loads((tmp_path / "new" / RECIPE_FILE).read_text())[name] is here
    other = dataclasses.replace(undecided, **{name: not here}).resolved()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / RECIPE_FILE).write_text(json.dumps(other.to_dict()))
    resumed = Trainer(undecided, tmp_path / "old", log=lambda _: None, progress=False)
    resumed._check_recipe()
    assert resumed.recipe == other
    with pytest.raises(TrainError, match="another recipe"):  # an explicit choice must match the run's
        decided = dataclasses.replace(other, **{name: here})
        Trainer(decided, tmp_path / "old", log=lambda _: None)._check_recipe()


def test_a_run_continues_from_a_checkpoint_with_its_weights_and_tokenizer(tiny_run: Path, tmp_path: Path,
                                                                           run_training):  # fmt: skip
    parent = tiny_run / "checkpoint"
    recipe = dataclasses.replace(TINY, init=str(parent), data_seed=TINY.data_seed + 1, dense_steps=2, indexer_steps=1,
                                 sparse_steps=1)  # fmt: skip
    ckpt = run_training(recipe, tmp_path / "continued")
    assert ckpt is not None
    assert (ckpt / "tokenizer.json").read_text() == (parent / "tokenizer.json").read_text()
    first = [json.loads(line) for line in (tiny_run / "train_log.jsonl").read_text().splitlines()][0]["lm"]
    cont = [json.loads(line) for line in (tmp_path / "continued" / "train_log.jsonl").read_text().splitlines()]
    assert cont[0]["stage"] == "dense" and cont[0]["lm"] < first - 0.3, (cont[0], first)  # not from random weights
    manifest = json.loads((ckpt / "manifest.json").read_text())
    lineage = manifest["continued_from"]
    assert lineage["checkpoint"] == str(parent) and lineage["training_data"]["generator_seed"] == TINY.data_seed
    assert manifest["training_data"]["generator_seed"] == TINY.data_seed + 1
    assert json.loads((tiny_run / "checkpoint" / "manifest.json").read_text()).get("continued_from") is None


def test_continuing_refuses_a_checkpoint_of_another_shape(tiny_run: Path, tmp_path: Path, run_training):
    recipe = dataclasses.replace(TINY, init=str(tiny_run / "checkpoint"), dim=TINY.dim * 2)
    with pytest.raises(TrainError, match=r"cannot continue from .*dim: file has 64, expected 128"):
        run_training(recipe, tmp_path / "other_shape")


def test_cli_set_changes_recipe_fields_by_their_types():
    from agentkit.errors import ConfigurationError
    from agentkit.training.cli import recipe_with

    r = recipe_with(TINY, ["families=hr, ledger", "dense_steps=3", "lr=0.01", "bf16=false", "difficulties=1,2"])
    assert (r.families, r.dense_steps, r.lr, r.bf16, r.difficulties) == (("hr", "ledger"), 3, 0.01, False, (1, 2))
    with pytest.raises(ConfigurationError, match="FIELD one of"):
        recipe_with(TINY, ["nope=1"])
    with pytest.raises(ConfigurationError, match="'many' is not a valid dense_steps"):
        recipe_with(TINY, ["dense_steps=many"])


def test_cli_train_init_names_a_missing_checkpoint(tmp_path: Path, capsys):
    from agentkit.app.cli import main

    assert main(["local", "train", str(tmp_path / "run"), "--tiny", "--init", str(tmp_path / "none")]) != 0
    assert "no model.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written
