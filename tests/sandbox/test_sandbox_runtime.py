"""Issue 40, optional stronger isolation: `SandboxLimits(runtime="runsc")` runs the same runner under gVisor where the
engine has it registered (docs/sandbox.md says how); the integrity cases hold there too."""

from __future__ import annotations

import errno

import pytest

from agentkit.sandbox import Sandbox, SandboxDied, SandboxLimits, SandboxUnavailable, engine

GVISOR = SandboxLimits(runtime="runsc")


def _has_runsc() -> bool:
    return "runsc" in (engine.client().info().get("Runtimes") or {})


async def test_an_unknown_runtime_says_how_to_get_it() -> None:
    with pytest.raises(SandboxUnavailable) as err:
        await Sandbox(SandboxLimits(runtime="no-such-runtime")).start()
    assert "apt-get install runsc" in str(err.value) and "daemon.json" in str(err.value)


async def test_runsc_runs_the_sandbox_under_gvisor() -> None:
    if not _has_runsc():
        pytest.skip(
            "gVisor's runsc is not registered with this engine (docs/sandbox.md: apt-get install runsc ...)"
        )
    async with Sandbox(GVISOR) as sb:
        assert (await sb.run_shell("uname -r")).stdout.strip() != (
            await _host_kernel()
        )  # gVisor's own kernel
        assert (await sb.run_python("x = 6 * 7\nx")).stdout == "42\n"
        await sb.run_shell("ln -s /proc/1/maps link; setsid -f sleep 1000")
        with pytest.raises(OSError) as link:
            await sb.get_file("link")
        assert link.value.errno == errno.ELOOP
        names = await sb.run_shell("ps -e -o comm= 2>/dev/null || ls /proc | grep -c '^[0-9]'")
        assert "sleep" not in names.stdout
        # gVisor's kernel runs in the container's memory cgroup: at the limit the host's OOM killer may take all of it.
        # Either the code dies and the runner answers, or the death of the whole sandbox is reported as what it is.
        try:
            bomb = await sb.run_python("hog = bytearray(2 * 1024**3)")
        except SandboxDied as exc:
            assert "out-of-memory killer" in str(exc)
        else:
            assert bomb.exit_code != 0 and (await sb.run_python("print('alive')")).stdout == "alive\n"


async def _host_kernel() -> str:
    import platform

    return platform.release()
