"""Lifecycle: the warm pool, dead runners never reused, cancellation and Ctrl-C leave nothing, the reaper after a
SIGKILL, and clear errors when the engine or the image is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.sandbox import Sandbox, SandboxDied, SandboxLimits, SandboxPool, SandboxUnavailable, engine

ROOT = Path(__file__).resolve().parents[2]


def container_ids() -> set[str]:
    return {c["id"] for c in engine.list_sandboxes()}


def python(script: str, **env: str) -> subprocess.Popen[str]:
    """A separate Python process running `script` from the project root."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_warm_pool_acquire_is_fast_and_never_reuses(
    limits: SandboxLimits, wait_removed: Callable[[list[str]], list[str]]
) -> None:
    async with SandboxPool(size=2, limits=limits) as pool:
        assert pool.warm == 2
        t0 = time.perf_counter()
        first = await pool.acquire()
        warm_acquire = time.perf_counter() - t0
        assert warm_acquire < 0.1
        await first.run_python("secret = 1")
        cid = first.container_id
        await pool.release(first)
        assert not first.alive
        await pool.wait_ready()
        assert pool.warm == 2
        async with pool.sandbox() as second:
            assert second.container_id != cid
            assert (await second.run_python("print('secret' in globals())")).stdout == "False\n"
        assert cid is not None and wait_removed([cid]) == []  # the released container was destroyed
        assert pool.stats["warm_acquires"] == 2 and pool.stats["cold_acquires"] == 0


async def test_pool_discards_a_warm_sandbox_that_died(limits: SandboxLimits) -> None:
    async with SandboxPool(size=1, limits=limits) as pool:
        victim = pool._ready[0]
        await engine.call(engine.client().api.kill, victim.container_id)
        sb = await pool.acquire()  # the dead one fails its ping and is thrown away; a cold start replaces it
        try:
            assert sb is not victim and sb.alive
            assert pool.stats["discarded"] == 1 and pool.stats["cold_acquires"] == 1
            assert (await sb.run_python("print(1)")).stdout == "1\n"
        finally:
            await pool.release(sb)


async def test_a_dead_runner_is_reported_and_never_reused(sb: Sandbox) -> None:
    cid = sb.container_id
    await engine.call(engine.client().api.kill, cid)
    with pytest.raises(SandboxDied, match="runner is gone"):
        await sb.run_python("print(1)")
    assert not sb.alive and "runner is gone" in (sb.died_reason or "")
    with pytest.raises(SandboxDied, match="is dead"):
        await sb.run_shell("echo again")
    assert cid not in container_ids()


async def test_a_runner_that_stops_answering_gets_its_container_killed(limits: SandboxLimits) -> None:
    async with Sandbox(limits.replace(grace=1.0)) as sb:
        cid = sb.container_id
        await engine.call(engine.client().api.pause, cid)  # freeze everything, the runner included
        t0 = time.perf_counter()
        with pytest.raises(SandboxDied, match="did not answer within 2 s"):
            await sb.run_python("print(1)", timeout=1)
        assert 1.9 < time.perf_counter() - t0 < 5
        assert cid not in container_ids()


async def test_cancellation_mid_execution_removes_the_container(sb: Sandbox) -> None:
    cid = sb.container_id
    task = asyncio.ensure_future(sb.run_python("import time\ntime.sleep(60)", timeout=60))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not sb.alive
    assert cid not in container_ids()
    with pytest.raises(SandboxDied):
        await sb.run_python("print(1)")


async def test_an_exception_inside_async_with_removes_the_container(limits: SandboxLimits) -> None:
    with pytest.raises(ZeroDivisionError):
        async with Sandbox(limits) as sb:
            cid = sb.container_id
            1 / 0  # noqa: B018
    assert cid not in container_ids()


def test_sigkill_of_the_owner_leaves_an_orphan_that_the_next_start_reaps() -> None:
    owner = python(
        """
        import asyncio, sys
        from agentkit.sandbox import Sandbox

        async def main():
            async with Sandbox() as sb:
                print(sb.container_id, flush=True)
                await sb.run_python("import time; time.sleep(600)", timeout=600)

        asyncio.run(main())
        """
    )
    assert owner.stdout is not None
    cid = owner.stdout.readline().strip()
    assert cid, owner.stderr.read() if owner.stderr else ""
    time.sleep(0.5)  # the execution is in flight
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    time.sleep(0.5)
    state = engine.client().api.inspect_container(cid)["State"]
    assert state["Running"], "the orphan should still be running until something reaps it"
    orphan = next(c for c in engine.list_sandboxes() if c["id"] == cid)
    assert orphan["alive"] is False
    next_start = python(
        """
        import asyncio
        from agentkit.sandbox import Sandbox

        async def main():
            async with Sandbox() as sb:
                print((await sb.run_python("print('fine')")).stdout.strip())

        asyncio.run(main())
        """
    )
    out, err = next_start.communicate(timeout=60)
    assert out.strip() == "fine", err
    assert cid not in container_ids()


def test_ctrl_c_leaves_nothing_running() -> None:
    proc = python(
        """
        import asyncio
        import signal
        from agentkit.sandbox import SandboxPool

        # Ctrl-C as in a terminal, however pytest was started: a shell without job control starts background
        # jobs with SIGINT ignored, and the child would inherit that and never see the signal.
        signal.signal(signal.SIGINT, signal.default_int_handler)

        async def main():
            async with SandboxPool(size=2) as pool:
                sb = await pool.acquire()
                print(sb.container_id, flush=True)
                await sb.run_python("import time; time.sleep(600)", timeout=600)

        asyncio.run(main())
        """
    )
    assert proc.stdout is not None
    cid = proc.stdout.readline().strip()
    assert cid
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    owner = f"/{proc.pid}/"
    assert not [c for c in engine.list_sandboxes() if owner in c["owner"]]


def test_no_engine_is_a_clear_error() -> None:
    proc = python(
        """
        import asyncio
        from agentkit.sandbox import Sandbox, SandboxUnavailable
        try:
            asyncio.run(Sandbox().start())
        except SandboxUnavailable as exc:
            print(exc)
        """,
        DOCKER_HOST="unix:///tmp/agentkit-no-such-engine.sock",
    )
    out, err = proc.communicate(timeout=30)
    assert "no Docker engine answers at unix:///tmp/agentkit-no-such-engine.sock" in out, err
    assert "Fix: bash scripts/ensure-docker.sh && agentkit sandbox build" in out


async def test_a_missing_image_is_a_clear_error() -> None:
    mine = engine.owner_id()  # other processes (other sessions' tests) may start sandboxes meanwhile
    before = {c["id"] for c in engine.list_sandboxes() if c["owner"] == mine}
    with pytest.raises(
        SandboxUnavailable, match=r"agentkit-sandbox:0000 is not built. Fix: agentkit sandbox build"
    ):
        await Sandbox(image_tag="agentkit-sandbox:0000").start()
    assert {c["id"] for c in engine.list_sandboxes() if c["owner"] == mine} == before
