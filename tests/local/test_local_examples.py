"""The local examples and `agentkit serve --help`, run as a user would (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_local_agent_example(random_checkpoint: Path) -> None:
    proc = run("examples/local_agent.py", "--checkpoint", str(random_checkpoint))
    assert proc.returncode == 0, proc.stderr
    assert "status completed" in proc.stdout or "status max_turns" in proc.stdout
    assert "cost $0.0000" in proc.stdout


def test_local_serve_example(random_checkpoint: Path) -> None:
    proc = run("examples/local_serve.py", "--checkpoint", str(random_checkpoint))
    assert proc.returncode == 0, proc.stderr
    assert "models: ['local-dsa']" in proc.stdout
    assert "finish_reason:" in proc.stdout and "completion tokens" in proc.stdout


def test_serve_help_lists_the_options() -> None:
    proc = run("-m", "agentkit.app.cli", "serve", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in (
        "--provider",
        "--checkpoint",
        "--port",
        "--host",
        "--api-key",
        "--max-queue",
        "--random-init",
    ):
        assert option in proc.stdout
