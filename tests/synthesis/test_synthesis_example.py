"""examples/synthesis_demo.py (what `make demo-synthesis` runs), as a user would run it: from outside the clone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.docker
def test_synthesis_demo_example(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "synthesis_demo.py"), str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "synthesis: done, 2 task(s) kept" in out and "pass@1 1.00 over 2 task(s)" in out
    assert "DEEPSEEK_API_KEY" in out and "agentkit envs synthesize" in out
    assert (tmp_path / "out" / "harbor" / "trip-planning-book-cheapest" / "task.toml").is_file()
