"""Gated package tasks, produced once per session in real sandboxes (skips where Docker or the image is missing)."""

from __future__ import annotations

import asyncio

import pytest

from agentkit.envs.spec import TaskRecord


@pytest.fixture(scope="session")
def gated_trip() -> list[TaskRecord]:
    from tests.conftest import docker_missing

    why = docker_missing()
    if why:
        pytest.skip(why)
    from agentkit.envs.packages import check_package
    from agentkit.testing.packages import trip_package

    report = asyncio.run(check_package(trip_package()))
    assert [o.reason for o in report.outcomes] == [None, None], report.outcomes
    return report.kept
