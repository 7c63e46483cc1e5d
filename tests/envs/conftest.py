"""Shared fixtures: one checked task set covering every family x difficulty, generated once per session."""

from __future__ import annotations

import pytest

from agentkit.envs.families import families
from agentkit.envs.generator import generate
from agentkit.envs.spec import TaskRecord

PER_CELL = 5
"""Tasks per (family, difficulty): 10 families x 5 levels x 5 = 250 tasks."""


@pytest.fixture(scope="session")
def family_names() -> list[str]:
    return list(families())


@pytest.fixture(scope="session")
def task_set(family_names: list[str]) -> list[TaskRecord]:
    n = len(family_names) * 5 * PER_CELL
    slots = list(generate(n, seed=1234, fams=family_names))
    assert all(s.line is not None for s in slots), "every slot should find a valid task"
    return [TaskRecord.from_json(s.line) for s in slots if s.line]


@pytest.fixture(scope="session")
def by_family(task_set: list[TaskRecord]) -> dict[str, list[TaskRecord]]:
    out: dict[str, list[TaskRecord]] = {}
    for r in task_set:
        out.setdefault(r.task.family, []).append(r)
    return out
