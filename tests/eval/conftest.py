"""Helpers of the eval tests: a small task set on disk and the real `agentkit` CLI run in this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.app.cli import main as agentkit_main
from agentkit.envs.attempt import needs_python
from agentkit.envs.generator import generate_records
from agentkit.envs.spec import TaskRecord, write_jsonl


@pytest.fixture(scope="session")
def small_tasks() -> list[TaskRecord]:
    return [r for r in generate_records(24, seed=5, difficulties=(1, 2, 3)) if not needs_python(r)][:12]


@pytest.fixture
def task_file(tmp_path: Path, small_tasks: list[TaskRecord]) -> Path:
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, small_tasks)
    return path


def run_cli(*argv: str) -> int:
    try:
        return agentkit_main(list(argv))
    except SystemExit as exc:  # argparse's own exits
        return int(exc.code or 0)


@pytest.fixture
def cli():
    """`cli("eval", "--tasks", ...)` -> exit code."""
    return run_cli
