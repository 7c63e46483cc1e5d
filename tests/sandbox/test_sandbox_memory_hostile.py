"""Issue 40, killing the runner: memory held outside any process (files and inodes in the tmpfs mounts, memfds, SysV
segments) is capped so that, with the code's processes OOM-killed, the runner fits; at the default limits. Each case
checks that the runner answers afterwards and a neighbour is unaffected."""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable

import pytest

from agentkit.sandbox import Sandbox, SandboxDied, SandboxLimits

Unaffected = Callable[[Sandbox], Awaitable[None]]


async def _runner_alive(sb: Sandbox) -> None:
    assert sb.alive and await sb.ping() < 1.0
    assert (await sb.run_python("print('runner alive')")).stdout == "runner alive\n"


async def test_a_million_empty_files_stop_at_the_inode_cap(
    dsb: Sandbox, dneighbour: Sandbox, assert_unaffected: Unaffected
) -> None:
    result = await dsb.run_python(
        "import os\nn = 0\ntry:\n    for n in range(1_000_000):\n        open(f'f{n}', 'w').close()\n"
        "except OSError as e:\n    print(n, e.errno)"
    )
    made, err = result.stdout.split()
    assert int(err) == errno.ENOSPC and int(made) < SandboxLimits().work_inodes
    await _runner_alive(dsb)
    await assert_unaffected(dneighbour)


async def test_filling_every_tmpfs_then_a_memory_bomb_leaves_the_runner(
    dsb: Sandbox, dneighbour: Sandbox, assert_unaffected: Unaffected
) -> None:
    fill = await dsb.run_shell(
        "head -c 200m /dev/zero > /work/a; head -c 100m /dev/zero > /tmp/b; head -c 20m /dev/zero > /dev/shm/c;"
        " for i in $(seq 8000); do : > /tmp/i$i; done 2>/dev/null; du -sm /work /tmp /dev/shm"
    )
    assert "No space left" in fill.stderr
    bomb = await dsb.run_python("hog = bytearray(2 * 1024**3)")
    assert bomb.exit_code == 137 and bomb.state_reset
    await _runner_alive(dsb)
    await assert_unaffected(dneighbour)


async def test_memfds_and_sysv_segments_are_refused(dsb: Sandbox) -> None:
    result = await dsb.run_python(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "try:\n    os.memfd_create('hold')\n    print('memfd')\nexcept OSError as e:\n    print(e.errno)\n"
        "print(libc.shmget(0, 64 << 20, 0o1600), ctypes.get_errno())\n"
        "print(libc.msgget(0, 0o1600), ctypes.get_errno())"
    )
    assert result.stdout.split() == [str(errno.EPERM), "-1", str(errno.EPERM), "-1", str(errno.EPERM)]
    await _runner_alive(dsb)


async def test_a_background_holder_that_lowered_its_oom_score_does_not_survive_the_call(dsb: Sandbox) -> None:
    await dsb.run_shell(
        "(echo 0 > /proc/self/oom_score_adj; exec python3 -c 'import time; x = bytearray(300 << 20); "
        "time.sleep(3600)') > /dev/null 2>&1 &"
    )
    result = await dsb.run_python("hog = bytearray(300 * 1024**2)\nprint('fits')")
    assert result.stdout == "fits\n"  # the holder ended with its command: its memory is back
    await _runner_alive(dsb)


async def test_oom_scores_of_runner_and_code(dsb: Sandbox) -> None:
    scores = await dsb.run_shell("cat /proc/1/oom_score_adj /proc/self/oom_score_adj")
    runner, code = (int(x) for x in scores.stdout.split())
    assert code == 1000
    if dsb.hello["uids"]["oom_protected"]:
        assert runner == -1000
        lowered = await dsb.run_shell("echo 0 > /proc/self/oom_score_adj")
        assert lowered.exit_code != 0
    else:
        pytest.skip(
            "this engine cannot grant CAP_SYS_RESOURCE: the runner's score stays 0 (see docs/sandbox.md)"
        )


SOCKET_HOARD = r"""
import os, socket, time
open('/proc/self/oom_score_adj', 'w').write('0')  # refused where the engine grants CAP_SYS_RESOURCE
for _ in range(6):
    if os.fork() == 0:
        held = []
        try:
            for _ in range(500):
                a, b = socket.socketpair()
                a.setblocking(False)
                try:
                    while True:
                        a.send(b'x' * 65536)
                except BlockingIOError:
                    held.append((a, b))
        except OSError:
            pass
        time.sleep(60)
time.sleep(8)
"""


async def test_socket_buffers_kill_the_code_or_the_runners_death_is_reported_precisely(
    dsb: Sandbox, dneighbour: Sandbox, assert_unaffected: Unaffected
) -> None:
    """Kernel memory held in socket buffers is no process's RSS: with the code at an OOM score equal to the runner's,
    the killer may pick the runner. Where the runner is protected (-1000) it survives; elsewhere its death must be
    reported as what it is, and the sandbox is replaced by the next tool call (test_sandbox_tool)."""
    try:
        await dsb.run_python(SOCKET_HOARD, timeout=15)
    except SandboxDied as exc:
        assert not dsb.hello["uids"]["oom_protected"]
        assert "out-of-memory killer" in str(exc)
    else:
        await _runner_alive(dsb)
    await assert_unaffected(dneighbour)
