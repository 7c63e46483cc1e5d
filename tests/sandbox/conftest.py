"""Fixtures for the sandbox tests: real containers on the local Docker engine, and a leak check after every test.

These tests need the engine and the image, so all of them are marked `docker`: where either is missing they skip
before any fixture runs, each with the reason and the command that sets them up (tests/conftest.py), so
`pytest -m "not docker"` and a machine without Docker both work. A skip is not a pass: `-rs` lists them, and with
AGENTKIT_TESTS_STRICT=1 they fail instead, for runs that must prove the hostile suite. `engine_ready` still fails a
test whose engine went away after that check.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from agentkit.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, engine, image

SETUP = "bash scripts/ensure-docker.sh && agentkit sandbox build"
# Small and quick limits, so a hostile case ends in a second or two.
ProcessNames = Callable[[Sandbox], Awaitable[list[str]]]
TEST_LIMITS = SandboxLimits(timeout=5, memory="256m", pids=64, work_size="32m", tmp_size="8m", grace=3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/sandbox/" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine_ready() -> str:
    """The image tag; fails the test with the setup command when the engine or the image is gone (a missing one was
    already a skip, see the module's docstring)."""
    try:
        engine.client()
        return image.require_image()
    except SandboxUnavailable as exc:
        problem = str(exc)
    pytest.fail(f"the Docker sandbox is not set up: {problem}\nRun: {SETUP}", pytrace=False)


def our_containers() -> list[str]:
    me = engine.owner_id()
    return [c["id"] for c in engine.list_sandboxes() if c["owner"] == me]


def wait_gone(ids: list[str] | None = None, timeout: float = 10.0) -> list[str]:
    """Containers (ours, or `ids`) still present after waiting up to `timeout` s for background removals."""
    deadline = time.monotonic() + timeout
    while True:
        present = {c["id"] for c in engine.list_sandboxes()}
        left = [c for c in (ids if ids is not None else our_containers()) if c in present]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.fixture
def wait_removed() -> Callable[[list[str]], list[str]]:
    """`wait_removed(ids)`: the ones still present after up to 10 s of background removal."""
    return wait_gone


@pytest.fixture(autouse=True)
def no_leaks(engine_ready: str) -> Iterator[None]:
    """Every test must leave no container of this process behind (checked after all its fixtures closed)."""
    before = set(our_containers())
    yield
    left = wait_gone([c for c in our_containers() if c not in before])
    assert not left, f"the test left {len(left)} sandbox container(s) running: {[c[:12] for c in left]}"


@pytest.fixture
def limits() -> SandboxLimits:
    return TEST_LIMITS


@pytest.fixture
async def sb(limits: SandboxLimits) -> AsyncIterator[Sandbox]:
    async with Sandbox(limits) as box:
        yield box


@pytest.fixture
async def dsb() -> AsyncIterator[Sandbox]:
    """A sandbox at the DEFAULT limits: the integrity cases of issue 40 must hold exactly as users get them."""
    async with Sandbox() as box:
        yield box


@pytest.fixture
async def dneighbour() -> AsyncIterator[Sandbox]:
    """A second sandbox at the default limits, holding state."""
    async with Sandbox() as box:
        await box.run_python("canary = 'still here'")
        yield box


@pytest.fixture
async def neighbour(limits: SandboxLimits) -> AsyncIterator[Sandbox]:
    """A second sandbox holding state, to show a hostile case in `sb` does not reach it."""
    async with Sandbox(limits) as box:
        await box.run_python("canary = 'still here'")
        yield box


@pytest.fixture
def process_names() -> ProcessNames:
    """`await process_names(sb)`: commands of the processes alive in a sandbox."""
    return _process_names


@pytest.fixture
def assert_unaffected() -> Callable[[Sandbox], Awaitable[None]]:
    """`await assert_unaffected(neighbour)`: it answers quickly and kept its state."""
    return _assert_unaffected


LIST_PROCESSES = """
import os
names = []
for p in filter(str.isdigit, os.listdir('/proc')):
    try:
        names.append(open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')[0].decode().rsplit('/', 1)[-1])
    except (OSError, ValueError):
        pass
print(' '.join(sorted(n for n in names if n)))
"""


async def _process_names(sb: Sandbox) -> list[str]:
    """Commands of the processes alive in the sandbox (the runner and its Python kernel both show as python3)."""
    result = await sb.run_python(LIST_PROCESSES)
    assert result.ok, result
    return result.stdout.split()


async def _assert_unaffected(neighbour: Sandbox) -> None:
    t0 = time.perf_counter()
    result = await neighbour.run_python("print(canary)")
    assert result.stdout == "still here\n", result
    assert time.perf_counter() - t0 < 2.0
