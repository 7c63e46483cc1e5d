"""The training run: `Trainer` trains a recipe in a run directory, resumable, in fresh processes per chunk of steps,
with a progress bar or log lines, and writes the checkpoint and its manifest at the end.

Determinism and resume: the run state (weights, optimiser moments, step) is written atomically every `save_every`
steps, and resuming from it continues bit-for-bit the way an uninterrupted run would (same thread count).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agentkit.backends.local.backend import MANIFEST_FILE, save_local_checkpoint
from agentkit.backends.local.cpu import cpu_name, native_bf16
from agentkit.backends.local.model import DSATransformer
from agentkit.backends.local.tokenizer import ChatTokenizer

from .data import Example, batch_schedule, build_dataset, collate, load_dataset, make_batches, save_dataset
from .manifest import RunState, minutes_left, source_tree, write_manifest
from .recipe import MACHINE_DECIDED, Recipe, TrainError
from .steps import initial_model, lr_at, make_optimizer, peak_lr, stage_at, train_step

STATE_FILE = "train_state.pt"
RECIPE_FILE = "recipe.json"
PROVENANCE_FILE = "provenance.json"
LOG_FILE = "train_log.jsonl"
DATA_FILE = "dataset.pt"


STEPS_PER_PROCESS = 500
"""A long run trains in fresh processes of this many steps each (`Trainer.steps_per_process`). Why: in one process
the step time creeps up over hundreds of steps (with glibc's malloc and jemalloc alike), while a fresh process that
resumes the same state steps at the first speed again; a restart costs only seconds (imports, the cached dataset, a
warm-cache compile)."""


def _print(line: str) -> None:
    print(line, flush=True)


def _picklable(obj: object) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def _train_from_stdin() -> None:
    """Entry point of a training process started by `Trainer._run_in_processes`: a pickled (Trainer, stop_after)."""
    import pickle

    trainer, stop_after = pickle.loads(sys.stdin.buffer.read())
    trainer.run(stop_after)


class Trainer:
    """A training run in a directory: `run()` trains (resuming when the directory holds a run of the same recipe) and
    writes the final checkpoint (`checkpoint/`) plus `manifest.json` there."""

    def __init__(
        self, recipe: Recipe, run_dir: str | Path, *, threads: int | None = None, workers: int = 1,
        log: Callable[[str], None] | None = None, progress: bool | None = None,
        steps_per_process: int | None = STEPS_PER_PROCESS, command: str | None = None,
    ) -> None:  # fmt: skip
        self.recipe = recipe
        self.command = command
        self.dir = Path(run_dir)
        self.threads = threads
        self.workers = workers
        self.log = log or _print
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.steps_per_process = steps_per_process

    # -- persistence --------------------------------------------------------------------------------------------

    def _check_recipe(self) -> None:
        """Refuse a directory of another recipe; store the recipe, with its precision decided, in a new one. A recipe
        that leaves `bf16` or `compile` to the machine takes the stored decision on resume, so a run keeps one."""
        path = self.dir / RECIPE_FILE
        if path.exists():
            stored = Recipe.from_dict(json.loads(path.read_text()))
            decided = {k: getattr(stored, k) for k in MACHINE_DECIDED if getattr(self.recipe, k) is None}
            self.recipe = dataclasses.replace(self.recipe, **decided)
            if stored != self.recipe:
                diffs = {k: (v, getattr(self.recipe, k)) for k, v in stored.to_dict().items()
                         if v != self.recipe.to_dict()[k]}  # fmt: skip
                raise TrainError(
                    f"{self.dir} holds a run of another recipe (stored vs asked: {diffs}); use another directory "
                    "or delete it to start over"
                )
        else:
            self.recipe = self.recipe.resolved()
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.recipe.to_dict(), indent=1) + "\n")
        self._record_provenance()

    def _record_provenance(self) -> None:
        """The command and the source tree of every process that trained this run (`provenance.json`; the
        manifest copies it): a checkpoint then says exactly what produced it, and a run resumed on another
        commit says so."""
        path = self.dir / PROVENANCE_FILE
        entries = json.loads(path.read_text()) if path.exists() else []
        here = {"command": self.command, **source_tree()}
        if not entries or {k: entries[-1].get(k) for k in here} != here:
            path.write_text(json.dumps([*entries, here], indent=1) + "\n")

    def _save_state(self, model: DSATransformer, opt: torch.optim.Optimizer | None, state: RunState) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        torch.save(
            {"model": model.state_dict(), "opt": opt.state_dict() if opt else None,
             "step": state.step, "elapsed": state.elapsed, "history": state.history},
            tmp,
        )  # fmt: skip
        os.replace(tmp, self.dir / STATE_FILE)  # atomic: a kill mid-write leaves the previous state

    def _saved_step(self) -> int:
        path = self.dir / STATE_FILE
        # mmap: the step without reading the weights and optimiser moments beside it
        return int(torch.load(path, weights_only=True, mmap=True)["step"]) if path.exists() else 0

    def _dataset(self) -> tuple[ChatTokenizer, list[Example], float]:
        """The run's dataset, built once and cached in the run directory (`DATA_FILE`); the minutes are the build's."""
        path = self.dir / DATA_FILE
        if path.exists():
            tokenizer, examples, minutes = load_dataset(path)
            self.log(f"data: {len(examples)} trajectories from {path}")
            return tokenizer, examples, minutes
        t0 = time.monotonic()
        tokenizer, examples = build_dataset(self.recipe, self.log, self.workers)
        minutes = (time.monotonic() - t0) / 60  # generation, tokenizer, encoding: what every run of the recipe pays
        save_dataset(path, tokenizer, examples, minutes)
        return tokenizer, examples, minutes

    def _run_in_processes(self, end: int) -> Path | None:
        """Train to step `end` in a sequence of fresh processes of `steps_per_process` steps (see STEPS_PER_PROCESS),
        each resuming the state the previous one saved; the last writes the checkpoint."""
        import pickle
        import subprocess

        if getattr(self.log, "__module__", "__main__") == "__main__" or not _picklable(self.log):
            self.log = _print  # a lambda or a script's function cannot reach another process; its lines go to stdout
        if not (self.dir / DATA_FILE).exists():
            self._dataset()  # built and cached once, here; every process loads it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        while (step := self._saved_step()) < end:
            stop = min(step + (self.steps_per_process or end), end)
            child = Trainer(self.recipe, self.dir, threads=self.threads, workers=self.workers, log=self.log,
                            progress=self.progress, steps_per_process=None, command=self.command)  # fmt: skip
            job = pickle.dumps((child, stop))
            # a fresh interpreter, not multiprocessing's spawn: spawn re-runs the caller's script without a main guard
            code = subprocess.run([sys.executable, "-c", f"import {__name__} as t; t._train_from_stdin()"],
                                  input=job, env=env).returncode  # fmt: skip
            if code != 0:
                raise TrainError(
                    f"the training process for steps {step}-{stop} exited with code {code}; the run is saved "
                    f"at step {self._saved_step()} in {self.dir}: run again to resume"
                )
            if self._saved_step() == step:
                raise TrainError(f"the training process for steps {step}-{stop} saved no progress in {self.dir}")
        ckpt = self.dir / "checkpoint"
        return ckpt if end == self.recipe.total_steps and (ckpt / MANIFEST_FILE).exists() else None

    def _load_state(self, model: DSATransformer) -> tuple[RunState, dict[str, Any] | None]:
        path = self.dir / STATE_FILE
        if not path.exists():
            return RunState(), None
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["model"])
        return RunState(saved["step"], saved["elapsed"], list(saved["history"])), saved["opt"]

    # -- the loop -----------------------------------------------------------------------------------------------

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to the end of the recipe (or resume) and write the checkpoint; returns the checkpoint directory.

        `stop_after`: save the state and return None once this many global steps are done (what an interruption
        leaves behind; used by the resume test)."""
        if self.threads:
            torch.set_num_threads(self.threads)
        self._check_recipe()
        recipe = self.recipe
        self.log(f"precision: {'bfloat16 autocast' if recipe.bf16 else 'float32'}, "
                 f"{'compiled (the first step of each stage compiles, about a minute)' if recipe.compile else 'eager'}"
                 f" ({cpu_name()})")
        if recipe.bf16 and not native_bf16():
            self.log("warning: this CPU has no native bfloat16 (no AVX512-BF16/AMX), so bf16 autocast is emulated and "
                     "steps are about 20x slower than float32; train with bf16=None (decided by the CPU) or False")
        end = recipe.total_steps if stop_after is None else min(stop_after, recipe.total_steps)
        if self.steps_per_process and end - self._saved_step() > self.steps_per_process:
            return self._run_in_processes(end)
        tokenizer, examples, data_minutes = self._dataset()
        torch.manual_seed(recipe.seed)
        model = initial_model(recipe, tokenizer)
        state, opt_state = self._load_state(model)
        if state.step:
            self.log(f"resuming at step {state.step}/{recipe.total_steps} ({state.elapsed / 60:.1f} min trained)")
            # steps logged after the last save were lost with the process and are trained again: drop them
            (self.dir / LOG_FILE).write_text("".join(json.dumps(e) + "\n" for e in state.history))
        batches = make_batches(examples, recipe.batch_tokens, recipe.length_multiple)
        schedule = batch_schedule(len(batches), recipe.seed)
        for _ in range(state.step):  # the batches already consumed
            next(schedule)
        pad_id = tokenizer.eos_id
        opt: torch.optim.Optimizer | None = None
        opt_stage = None
        bar = _Bar(recipe.total_steps, state.step) if self.progress else None
        last_save = state.step
        try:
            while (cur := stage_at(recipe, state.step))[0] != "done":
                if stop_after is not None and state.step >= stop_after:
                    if state.step > last_save:
                        self._save_state(model, opt, state)
                    return None
                stage, i, n = cur
                if stage != opt_stage:
                    opt = make_optimizer(model, recipe, stage)
                    if opt_state is not None and i > 0:
                        opt.load_state_dict(opt_state)
                    opt_state, opt_stage = None, stage
                assert opt is not None
                batch = [examples[j] for j in batches[next(schedule)]]
                ids, target, real = collate(batch, pad_id, recipe.context_weight, recipe.length_multiple)
                t0 = time.monotonic()
                losses = train_step(model, opt, recipe, stage, lr_at(recipe, stage, i, n) / peak_lr(recipe, stage),
                                    ids, target, real)  # fmt: skip
                state.elapsed += time.monotonic() - t0
                state.step += 1
                entry = {"step": state.step, "stage": stage, **{k: round(v, 5) for k, v in losses.items()},
                         "tokens": int(real.sum()), "minutes": round(state.elapsed / 60, 3)}  # fmt: skip
                state.history.append(entry)
                with (self.dir / LOG_FILE).open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                if bar is not None:
                    bar.update(state.step, entry, minutes_left(recipe, state.history))
                elif state.step % 10 == 0 or state.step == recipe.total_steps:
                    self.log(_fmt(entry, recipe.total_steps, minutes_left(recipe, state.history)))
                if state.step - last_save >= recipe.save_every or stage_at(recipe, state.step)[0] != stage:
                    self._save_state(model, opt, state)
                    save_local_checkpoint(self.dir / "latest", model, tokenizer)  # for looking in on a long run
                    last_save = state.step
        finally:
            if bar is not None:
                bar.close()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(True)
        ckpt = save_local_checkpoint(self.dir / "checkpoint", model, tokenizer)
        provenance = self.dir / PROVENANCE_FILE
        runs = json.loads(provenance.read_text()) if provenance.exists() else []
        write_manifest(ckpt, recipe, state, examples, model.cfg, data_minutes, runs)
        self.log(f"done: {state.step} steps in {state.elapsed / 60:.1f} min; checkpoint at {ckpt}")
        return ckpt


def _fmt(entry: dict[str, Any], total: int, left: float | None) -> str:
    focus = f" focus {entry['focus']:.4f}" if "focus" in entry else ""
    return (f"step {entry['step']}/{total} [{entry['stage']}] lm {entry['lm']:.4f} index {entry['index']:.4f}{focus} "
            f"grad {entry['grad_norm']:.2f} {entry['minutes']:.1f} min{_left(left)}")  # fmt: skip


def _left(minutes: float | None) -> str:
    if minutes is None or minutes <= 0:
        return ""
    return f", about {minutes:.0f} min left" if minutes >= 1 else ", under a minute left"


class _Bar:
    """A rich progress bar showing the stage and the latest losses."""

    def __init__(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[losses]}"), TimeElapsedColumn(),
                           TextColumn("{task.fields[left]}"))  # fmt: skip
        self._p.start()
        self._task = self._p.add_task("train", total=total, completed=done, stage="", losses="", left="")

    def update(self, step: int, entry: dict[str, Any], left: float | None) -> None:
        losses = f"lm {entry['lm']:.4f} index {entry['index']:.4f}"
        self._p.update(self._task, completed=step, stage=entry["stage"], losses=losses, left=_left(left)[2:])

    def close(self) -> None:
        self._p.stop()
