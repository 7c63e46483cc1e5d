"""`make demo`'s main job on a tiny held-out task set: the shipped local model, one live episode, the eval, the report."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.torch  # the shipped local model
@pytest.mark.docker  # the demo's task set includes the dataset family, whose python tool runs in the sandbox
def test_local_pipeline_end_to_end(tmp_path, monkeypatch) -> None:
    import agentkit.app.demo as demo

    assert demo._local_checkpoint() is not None, "the trained checkpoint must ship in model_backend/local/checkpoint/"
    monkeypatch.setattr(demo, "DEMO_DIR", tmp_path)
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    assert demo.local_pipeline(console, per_family=1, seed=777_001) == 0
    out = buf.getvalue()
    assert "one episode, live" in out and "verifier:" in out  # the live episode ran and was scored
    assert "Eval summary" in out and "family dataset" in out and "family knowledge" in out
    assert (tmp_path / "report.html").stat().st_size > 10_000  # tables + embedded plots
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 1 + 10  # header + one attempt per family


def test_demo_cli_refuses_a_bad_choice() -> None:
    env = {**os.environ, "AGENTKIT_DEMO_MODEL": "gpu"}
    proc = subprocess.run([sys.executable, "-m", "agentkit.app.cli", "demo"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "use remote, local or scripted" in proc.stdout
