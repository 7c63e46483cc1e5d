"""Issue 40, the file API: `get_file`/`put_file` reach only regular files under /work and follow no link, at the
default limits. Each case checks the refusal, that nothing was read or written elsewhere, and the next call."""

from __future__ import annotations

import errno
import time

import pytest

from agentkit.sandbox import Sandbox, SandboxLimits
from agentkit.sandbox.limits import parse_size


async def _still_works(sb: Sandbox) -> None:
    assert (await sb.run_python("print('next call')")).stdout == "next call\n"
    assert await sb.ping() < 1.0


@pytest.mark.parametrize(
    "target", ["/proc/1/maps", "/proc/1/environ", "/proc/self/fd/0", "/dev/zero", "/etc/passwd"]
)
async def test_get_file_does_not_follow_a_link(dsb: Sandbox, target: str) -> None:
    await dsb.run_shell(f"ln -s {target} link; mkdir -p d; ln -s / d/root")
    with pytest.raises(OSError) as exc:
        await dsb.get_file("link")
    assert exc.value.errno == errno.ELOOP and "not followed" in str(exc.value)
    with pytest.raises(OSError) as through_dir:
        await dsb.get_file(f"d/root{target}")  # a link in a directory position is not followed either
    assert through_dir.value.errno in (errno.ELOOP, errno.ENOTDIR)
    await _still_works(dsb)


async def test_put_file_through_a_link_to_a_runner_descriptor_is_refused(dsb: Sandbox) -> None:
    await dsb.run_shell("for fd in 0 1 2 3 4 5 6 7; do ln -s /proc/1/fd/$fd fd$fd; done; ln -s /tmp tmplink")
    for fd in range(8):
        with pytest.raises(OSError):
            await dsb.put_file(f"fd{fd}", b'\x00\x00\x00\x10{"id": 1, "ok": 1}')
    with pytest.raises(OSError):
        await dsb.put_file("tmplink/planted", b"x")
    assert (await dsb.run_shell("ls /tmp")).stdout == ""
    await _still_works(dsb)


async def test_a_fifo_does_not_hang_the_call(dsb: Sandbox) -> None:
    await dsb.run_shell("mkfifo pipe")
    t0 = time.perf_counter()
    with pytest.raises(OSError) as got:
        await dsb.get_file("pipe")
    with pytest.raises(OSError) as put:
        await dsb.put_file("pipe", b"data")
    assert time.perf_counter() - t0 < 1.0
    assert "not a regular file" in str(got.value) + str(put.value) or got.value.errno == errno.ENXIO
    with pytest.raises(IsADirectoryError):
        await dsb.get_file(".")
    await _still_works(dsb)


async def test_sizes_are_exact(dsb: Sandbox) -> None:
    cap = parse_size(SandboxLimits().max_file)
    await dsb.run_shell(f"truncate -s {cap} exact; truncate -s {cap + 1} over")
    assert len(await dsb.get_file("exact")) == cap
    with pytest.raises(OSError) as over:
        await dsb.get_file("over")
    assert over.value.errno == errno.EFBIG
    with pytest.raises(OSError) as put:
        await dsb.put_file("toobig", b"x" * (cap + 1))
    assert put.value.errno == errno.EFBIG
    await _still_works(dsb)


@pytest.mark.parametrize("path", ["../../tmp/x", "../x", "a/../../x", "/tmp/x", "/etc/x", "/work/../tmp/x"])
async def test_paths_that_leave_work_are_refused(dsb: Sandbox, path: str) -> None:
    with pytest.raises(PermissionError):
        await dsb.put_file(path, b"escaped")
    with pytest.raises(PermissionError):
        await dsb.get_file(path)
    assert (await dsb.run_shell("ls -A /tmp; ls -A /")).stdout.count("x\n") == 0
    await _still_works(dsb)


async def test_ordinary_paths_still_work(dsb: Sandbox) -> None:
    assert await dsb.put_file("./a/b/../c.txt".replace("../", ""), b"one") == "/work/a/b/c.txt"
    assert await dsb.get_file("/work/a/b/c.txt") == b"one"
    await dsb.put_file("a/b/c.txt", b"shorter")  # truncated, not overwritten in place
    assert await dsb.get_file("a//b/./c.txt") == b"shorter"
    await dsb.run_shell("chmod 000 a/b/c.txt")
    with pytest.raises(PermissionError):
        await dsb.get_file("a/b/c.txt")  # the file API has the code's rights, no more
