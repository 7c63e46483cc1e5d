"""Same arguments, same bytes: across runs, across worker counts, and through the CLI."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.cli import main
from agentkit.envs.generator import generate


def _lines(n: int, seed: int, workers: int = 1) -> list[str]:
    return [s.line for s in generate(n, seed=seed, workers=workers) if s.line]


def test_same_seed_same_bytes_any_worker_count() -> None:
    a = _lines(60, seed=99)
    assert a == _lines(60, seed=99)
    assert a == _lines(60, seed=99, workers=2)
    assert a != _lines(60, seed=100)


def test_cli_files_are_byte_identical(tmp_path: Path) -> None:
    args = ["generate", "--n", "40", "--seed", "5", "--difficulty", "2-4", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.jsonl"), "--workers", "2"]) == 0
    a, b = (tmp_path / "a.jsonl").read_bytes(), (tmp_path / "b.jsonl").read_bytes()
    assert a == b and a.count(b"\n") == 40
    assert not (tmp_path / "a.jsonl.partial").exists()


def test_bytes_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Separate interpreters with different string-hash seeds (set/dict-order hazards) write identical files."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        subprocess.run([sys.executable, "-m", "agentkit.envs.cli", "generate", "--n", "50", "--seed", "8", "--workers", "1",
                        "--out", str(out)], check=True, env=env, cwd=root, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 50
