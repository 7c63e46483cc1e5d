"""Shared fixtures: a real scripted OpenAI/DeepSeek-compatible server on 127.0.0.1 and backends pointed at it.

Also what the markers promise (pyproject.toml): a test marked `docker` or `torch` skips, with a reason that says what
is missing and how to get it, where that is missing, so `pytest -m "not docker"` runs on a machine with neither and a
plain `pytest` there reports every test it could not run instead of failing on setup. `make test` sets both up; with
AGENTKIT_TESTS_STRICT=1 a missing one fails the test instead, for runs that must prove the whole suite.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from agentkit.testing.scripted_server import ScriptedServer


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    """`serve(script, **options)` starts a ScriptedServer for the test and stops it afterwards."""
    with ExitStack() as stack:

        def start(script: Any, **options: Any) -> ScriptedServer:
            return stack.enter_context(ScriptedServer(script, **options))

        yield start


TORCH_MISSING = "needs torch, which is not installed: pip install -e '.[local]' (`make test` installs it)"


@functools.cache
def docker_missing() -> str | None:
    """Why the Docker sandbox cannot run here (engine or image), or None when it can; asked once per session."""
    from agentkit.sandbox import SandboxUnavailable, engine, image

    try:
        engine.client()
        image.require_image()
    except SandboxUnavailable as exc:
        return f"needs Docker and the sandbox image: {exc} (`make test` sets both up)"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (before any fixture starts) a `torch` test without torch and a `docker` test without Docker."""
    why = None
    if item.get_closest_marker("torch") is not None and importlib.util.find_spec("torch") is None:
        why = TORCH_MISSING
    elif item.get_closest_marker("docker") is not None:
        why = docker_missing()
    if why is None:
        return
    if os.environ.get("AGENTKIT_TESTS_STRICT"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)
