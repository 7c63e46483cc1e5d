"""`agentkit local`: train the local DSA agent model, inspect a checkpoint, ship one into the package.

    agentkit local train RUN_DIR                 # the full recipe; re-run to resume
    agentkit local train RUN_DIR --tiny          # a seconds-long recipe: the plumbing, no quality
    agentkit local train RUN_DIR --init shipped --set families=hr,ledger --set dense_steps=400
                                                 # continue the shipped model on your own data (a fine-tune)
    agentkit local info [--checkpoint PATH]      # shape, training data seeds, time and eval figures
    agentkit local ship RUN_DIR                  # copy RUN_DIR/checkpoint into the package (LocalDSABackend() default)

Registered lazily by agentkit's CLI; torch is imported only when a sub-command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigurationError

SHIPPED_FILES = ("model.safetensors", "tokenizer.json", "manifest.json")
MAX_SHIPPED_BYTES = 25 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("local", help="train, inspect and ship the local DSA agent model",
                              description="Train the local DSA agent model on generated trajectories, inspect a "
                              "checkpoint, or ship one into the package.")  # fmt: skip
    sub = p.add_subparsers(dest="local_command", required=True)

    t = sub.add_parser("train", help="train (or resume) a run: dense LM, indexer warm-up, sparse training")
    t.add_argument("run_dir", type=Path, help="run directory (state, log, and the final checkpoint/ in it)")
    t.add_argument("--tiny", action="store_true", help="a seconds-long recipe for plumbing checks")
    t.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    t.add_argument("--workers", type=int, default=1, help="task generation processes (same data for any count)")
    t.add_argument("--steps-per-process", type=int, default=None, metavar="N",
                   help="train in fresh processes of N steps each, which keeps the step time from creeping up "
                   "(default 500; 0: one process)")  # fmt: skip
    t.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="continue from this checkpoint directory ('shipped': the packaged model): its weights and "
                   "tokenizer, the recipe's shape fields must match")  # fmt: skip
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one recipe field (repeatable), e.g. data_seed=5 n_tasks=2000 families=hr,ledger "
                   "dense_steps=400 lr=0.001; the fields are agentkit.training.Recipe's")  # fmt: skip
    t.set_defaults(func=cmd_train)

    i = sub.add_parser("info", help="print a checkpoint's manifest: shape, data seeds, training time, eval figures")
    i.add_argument("--checkpoint", type=Path, default=None, help="checkpoint directory (default: the shipped one)")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("ship", help="copy RUN_DIR/checkpoint into the package (the default of LocalDSABackend())")
    s.add_argument("run_dir", type=Path)
    s.set_defaults(func=cmd_ship)


def cmd_train(args: argparse.Namespace) -> int:
    from agentkit.backends.local.backend import checkpoint_paths
    from agentkit.training.loop import STEPS_PER_PROCESS, Trainer
    from agentkit.training.recipe import TINY, Recipe

    per_process = STEPS_PER_PROCESS if args.steps_per_process is None else args.steps_per_process  # 0: one process
    recipe = recipe_with(TINY if args.tiny else Recipe(), args.set)
    if args.init:
        init = _shipped_dir() if args.init == "shipped" else Path(args.init).expanduser().resolve()
        if not checkpoint_paths(init)[0].is_file():
            raise ConfigurationError(f"--init {args.init}: no model.safetensors in {init}; give a checkpoint "
                                     "directory (a run's checkpoint/, or 'shipped')")  # fmt: skip
        recipe = dataclasses.replace(recipe, init=str(init))
    command = shlex.join(["agentkit", "local", "train", str(args.run_dir), *(["--tiny"] if args.tiny else []),
                          *(["--init", args.init] if args.init else []),
                          *[a for kv in args.set for a in ("--set", kv)]])  # what the manifest names as its origin
    Trainer(recipe, args.run_dir, threads=args.threads, workers=args.workers, steps_per_process=per_process,
            command=command).run()  # fmt: skip
    return 0


def recipe_with(recipe: Any, assignments: list[str]) -> Any:
    """`recipe` with `FIELD=VALUE` assignments applied, each value parsed as its field's type (a tuple field takes
    a comma-separated list). An unknown field or a value of the wrong type is refused with what to write."""
    fields = {f.name: f for f in dataclasses.fields(recipe)}
    changes: dict[str, Any] = {}
    for item in assignments:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise ConfigurationError(f"--set {item!r}: write FIELD=VALUE with FIELD one of {sorted(fields)}")
        current = getattr(recipe, name)
        try:
            if isinstance(current, tuple):
                kind = type(current[0]) if current else str
                changes[name] = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
            elif isinstance(current, bool) or current is None:
                changes[name] = {"true": True, "false": False, "none": None}[text.strip().lower()]
            else:
                changes[name] = type(current)(text.strip())
        except (ValueError, KeyError):
            raise ConfigurationError(f"--set {item!r}: {text!r} is not a valid {name} (now {current!r})") from None
    return dataclasses.replace(recipe, **changes)


def _shipped_dir() -> Path:
    """The checkpoint packaged with the local backend (what `LocalDSABackend()` loads by default)."""
    from agentkit.backends.local.backend import SHIPPED_CHECKPOINT

    return SHIPPED_CHECKPOINT


def cmd_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from agentkit.backends.local.backend import manifest_lineage

    directory = args.checkpoint or _shipped_dir()
    path = directory / "manifest.json"
    if not path.exists():
        raise ConfigurationError(f"no manifest at {path}: train a model with `agentkit local train RUN_DIR`")
    manifest = json.loads(path.read_text())
    if args.json:
        print(json.dumps(manifest, indent=1))
        return 0
    t = Table(title=f"local DSA checkpoint: {directory}", show_header=False)
    cfg, data, train = manifest["config"], manifest["training_data"], manifest["training"]
    t.add_row("shape", f"dim {cfg['dim']}, {cfg['n_layers']} layers, {cfg['n_heads']} heads, vocab "
              f"{cfg['vocab_size']}, top-k {cfg['index_topk']}, {manifest['parameters']:,} parameters")  # fmt: skip
    t.add_row("training data", f"{data['n_trajectories']} trajectories, generator seed {data['generator_seed']}, "
              f"difficulty {data['difficulties']}, {data['tokens']:,} tokens")  # fmt: skip
    t.add_row("training", f"{train['steps']} steps, {train['train_minutes']} min, {train['torch_threads']} threads")
    for parent in manifest_lineage(manifest)[1:]:  # a continued model: each checkpoint it was continued from
        pdata, ptrain = parent.get("training_data", {}), parent.get("training", {})
        t.add_row("continued from", f"{pdata.get('n_trajectories')} trajectories, generator seed "
                  f"{pdata.get('generator_seed')}, {ptrain.get('steps')} steps, {ptrain.get('train_minutes')} min")
    t.add_row("agent settings", json.dumps({k: v for k, v in manifest["agent"].items() if k != "system_prompt"}))
    ev = manifest.get("eval")
    if ev:
        t.add_row("held-out pass@1", f"d1-2 {ev['pass1_d12']:.1%}, all {ev['pass1_all']:.1%} ({ev['tasks']} tasks, "
                  f"seed {ev['eval_seed']}), sparse-dense gap {ev['sparse_dense_gap_points']} points, "
                  f"top-k recall {ev['topk_recall']}")  # fmt: skip
    else:
        t.add_row("held-out pass@1", "not measured: run benchmarks/bench_agent_quality.py --write-manifest")
    Console().print(t)
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    src = args.run_dir / "checkpoint"
    missing = [f for f in SHIPPED_FILES if not (src / f).is_file()]
    if missing:
        raise ConfigurationError(f"{src} lacks {missing}: finish the run with `agentkit local train {args.run_dir}`")
    size = sum((src / f).stat().st_size for f in SHIPPED_FILES)
    if size > MAX_SHIPPED_BYTES:
        raise ConfigurationError(f"the checkpoint is {size / 2**20:.1f} MiB; the package ships at most 25 MiB")
    dst = _shipped_dir()
    dst.mkdir(exist_ok=True)
    for f in SHIPPED_FILES:
        shutil.copyfile(src / f, dst / f)
    print(f"shipped {size / 2**20:.1f} MiB to {dst}")
    return 0
