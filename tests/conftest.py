"""Shared fixtures: a real scripted OpenAI/DeepSeek-compatible server on 127.0.0.1 and backends pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from model_backend.scripted_server import ScriptedServer


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    """`serve(script, **options)` starts a ScriptedServer for the test and stops it afterwards."""
    with ExitStack() as stack:

        def start(script: Any, **options: Any) -> ScriptedServer:
            return stack.enter_context(ScriptedServer(script, **options))

        yield start
