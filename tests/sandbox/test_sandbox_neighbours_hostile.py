"""Issue 40, neighbours, the host's disk and open doors: each sandbox its own uid (per-uid kernel limits not shared), no
log on the host, and our seccomp filter on top of the engine's, one case per syscall family; at the default limits."""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Awaitable, Callable

import pytest

from agentkit.sandbox import Sandbox, engine

Unaffected = Callable[[Sandbox], Awaitable[None]]


async def test_each_sandbox_has_its_own_uid_and_the_runner_another(dsb: Sandbox, dneighbour: Sandbox) -> None:
    ids = []
    for sb in (dsb, dneighbour):
        out = (await sb.run_shell("id -u; awk '/^Uid/ {print $2}' /proc/1/status")).stdout.split()
        code, runner = int(out[0]), int(out[1])
        assert code == sb.uid and code not in (0, 65534) and runner not in (0, code)
        ids.append(code)
    assert ids[0] != ids[1]


async def test_inotify_instances_are_not_shared(dsb: Sandbox, dneighbour: Sandbox) -> None:
    hold = await dsb.run_python(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nheld = []\n"
        "while len(held) < 1000:\n    fd = libc.inotify_init()\n    if fd < 0:\n        break\n    held.append(fd)\n"
        "print(len(held), ctypes.get_errno())"
    )
    count, err = (int(x) for x in hold.stdout.split())
    assert err == errno.EMFILE and count > 0  # this sandbox hit the per-uid limit...
    other = await dneighbour.run_python(
        "import ctypes\nprint(ctypes.CDLL(None, use_errno=True).inotify_init() >= 0)"
    )
    assert other.stdout == "True\n"  # ...and its neighbour did not
    assert (await dneighbour.run_python("print(canary)")).stdout == "still here\n"


async def test_pipe_buffers_are_not_shared(dsb: Sandbox, dneighbour: Sandbox) -> None:
    grow = (
        "import fcntl, os\npipes, big = [], 0\n"
        "for _ in range(400):\n    r, w = os.pipe()\n    pipes.append((r, w))\n    try:\n"
        "        fcntl.fcntl(w, 1031, 1 << 20)\n        big += 1\n    except OSError:\n        pass\n"
        "print(big)"
    )
    greedy = int((await dsb.run_python(grow)).stdout)
    assert greedy < 400  # the per-uid soft limit of pipe pages was reached here
    fresh = int((await dneighbour.run_python(grow.replace("range(400)", "range(4)"))).stdout)
    assert fresh == 4


async def test_output_never_reaches_the_hosts_disk(dsb: Sandbox) -> None:
    info = engine.client().api.inspect_container(dsb.container_id)
    assert info["HostConfig"]["LogConfig"]["Type"] == "none"
    await dsb.run_shell("head -c 32m /dev/urandom > big")
    assert len(await dsb.get_file("big")) == 32 * 2**20
    await dsb.run_python("print('x' * 5_000_000)")
    logs = glob.glob(f"/var/lib/docker/containers/{dsb.container_id}/*.log")
    assert not [p for p in logs if os.stat(p).st_size > 0], logs


SYSCALLS = {
    # family: (python expression returning (result, errno), the errno expected)
    "io_uring": ("libc.syscall(425, 8, buf, 0)", errno.EPERM),
    "io_uring_enter": ("libc.syscall(426, 0, 0, 0, 0, 0, 0)", errno.EPERM),
    "vsock": ("libc.socket(40, 1, 0)", errno.EAFNOSUPPORT),
    "af_alg": ("libc.socket(38, 5, 0)", errno.EAFNOSUPPORT),
    "socketpair_vsock": ("libc.socketpair(40, 1, 0, buf)", errno.EAFNOSUPPORT),
    "userfaultfd": ("libc.syscall(323, 0)", errno.EPERM),
    "ptrace": ("libc.syscall(101, 16, 1, 0, 0)", errno.EPERM),
    "process_vm_readv": ("libc.syscall(310, 1, 0, 0, 0, 0, 0)", errno.EPERM),
    "perf_event_open": ("libc.syscall(298, buf, 0, -1, -1, 0)", errno.EPERM),
    "bpf": ("libc.syscall(321, 0, buf, 64)", errno.EPERM),
    "keyctl": ("libc.syscall(250, 0, 0, 0, 0, 0)", errno.EPERM),
    "unshare": ("libc.syscall(272, 0x10000000)", errno.EPERM),
    "setns": ("libc.syscall(308, 0, 0)", errno.EPERM),
    "open_by_handle_at": ("libc.syscall(304, 0, buf, 0)", errno.EPERM),
    "x32_abi": ("libc.syscall(0x40000000 + 39)", errno.EPERM),
    "memfd": ("libc.syscall(319, b'x', 0)", errno.EPERM),
    "sysv_sem": ("libc.semget(0, 1, 0o1600)", errno.EPERM),
}


@pytest.mark.parametrize("family", sorted(SYSCALLS))
async def test_seccomp_blocks_each_family(dsb: Sandbox, family: str) -> None:
    call, expected = SYSCALLS[family]
    result = await dsb.run_python(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(256)\n"
        f"r = {call}\nprint(r, ctypes.get_errno())"
    )
    assert result.stdout.split() == ["-1", str(expected)], result
    shell = await dsb.run_shell("python3 -c 'import socket; socket.socket(40, 1)' 2>&1 | tail -1")
    assert "Address family not supported" in shell.stdout  # the shell's processes carry the filter too
    assert (await dsb.run_python("import socket; socket.socket().close(); print('ok')")).stdout == "ok\n"
