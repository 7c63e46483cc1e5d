"""Hostile code: each case is contained, the neighbour sandbox and the host are unaffected, and (checked by the
autouse `no_leaks` fixture) no container is left behind."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agentkit.sandbox import Sandbox, SandboxLimits, engine

Unaffected = Callable[[Sandbox], Awaitable[None]]
ProcessNames = Callable[[Sandbox], Awaitable[list[str]]]


async def test_container_is_created_with_every_limit(sb: Sandbox, limits: SandboxLimits) -> None:
    host = engine.client().api.inspect_container(sb.container_id)["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == host["MemorySwap"] == 256 * 2**20
    assert host["PidsLimit"] == limits.pids
    assert host["NanoCpus"] == 10**9
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and set(host["CapAdd"]) <= {"SETUID", "SETGID", "KILL", "SYS_RESOURCE"}
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["LogConfig"]["Type"] == "none"
    assert set(host["Tmpfs"]) == {"/work", "/tmp", "/dev/shm"}
    assert {u["Name"] for u in host["Ulimits"]} >= {"nofile", "fsize"}
    # the capabilities are the runner's (uid R): user code has none, and the seccomp filters are the engine's and ours
    status = await sb.run_shell(
        "id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp_filters)' /proc/self/status"
    )
    assert status.stdout.split() == [
        str(sb.uid),
        "CapPrm:",
        "0" * 16,
        "CapEff:",
        "0" * 16,
        "NoNewPrivs:",
        "1",
        "Seccomp_filters:",
        "2",
    ]


async def test_python_fork_bomb(
    sb: Sandbox, neighbour: Sandbox, assert_unaffected: Unaffected, process_names: ProcessNames
) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    task = asyncio.ensure_future(sb.run_python(bomb, timeout=3))
    await asyncio.sleep(1.0)
    await assert_unaffected(neighbour)  # while the bomb is going off
    result = await task
    assert result.timed_out and result.state_reset and result.exit_code == 137
    assert await process_names(sb) == ["python3", "python3"]  # every forked copy is gone
    assert (await sb.run_python("print('usable')")).stdout == "usable\n"


async def test_shell_fork_bomb(
    sb: Sandbox, neighbour: Sandbox, assert_unaffected: Unaffected, process_names: ProcessNames
) -> None:
    task = asyncio.ensure_future(sb.run_shell(":(){ :|:& };:; sleep 2", timeout=3))
    await asyncio.sleep(1.0)
    await assert_unaffected(neighbour)  # while the bomb is going off
    result = await task
    assert "fork: retry: Resource temporarily unavailable" in result.stderr  # it hit the pids limit
    assert result.duration < 4
    assert await process_names(sb) == ["python3", "python3"]  # the bomb ended with the command
    assert (await sb.run_shell("echo usable")).stdout == "usable\n"


async def test_memory_bomb(sb: Sandbox, neighbour: Sandbox, assert_unaffected: Unaffected) -> None:
    await sb.run_python("kept = 1")
    result = await sb.run_python("hog = b'x' * (2 * 1024**3)")
    assert result.exit_code == 137 and result.state_reset and not result.timed_out
    assert "memory" in (result.exc_message or "") and "killed" in result.stderr
    await assert_unaffected(neighbour)
    after = await sb.run_python("print('kept' in globals())")
    assert after.stdout == "False\n"  # a fresh interpreter, and it works


async def test_endless_print_is_stopped_and_truncated(sb: Sandbox, limits: SandboxLimits) -> None:
    t0 = time.perf_counter()
    result = await sb.run_python("while True:\n    print('spam ' * 20)")
    assert time.perf_counter() - t0 < limits.timeout  # stopped by the output limit, not the timeout
    assert result.output_limited and result.truncated and not result.timed_out
    assert result.stdout_bytes > 8 * 2**20
    assert len(result.stdout.encode()) < 64 * 1024 + 200
    assert "[... truncated: " in result.stdout and result.stdout.rstrip().endswith(
        "spam"
    )  # head and tail kept
    assert "more than 8388608 bytes of output" in result.stderr


async def test_sleep_forever_is_killed_at_the_timeout(
    sb: Sandbox, neighbour: Sandbox, assert_unaffected: Unaffected
) -> None:
    await sb.run_python("kept = 1")
    result = await sb.run_python("import time\nprint('before', flush=True)\ntime.sleep(10**6)", timeout=1)
    assert result.timed_out and result.exit_code == 137 and result.state_reset
    assert 1.0 <= result.duration < 2.0
    assert result.stdout == "before\n" and "exceeded its 1 s timeout" in result.stderr
    await assert_unaffected(neighbour)
    assert (await sb.run_python("print('kept' in globals())")).stdout == "False\n"


async def test_filling_the_tmpfs(sb: Sandbox) -> None:
    code = (
        "chunk = b'x' * 2**20\nn = 0\ntry:\n    with open('fill', 'wb') as f:\n        while True:\n"
        "            f.write(chunk)\n            f.flush()\n            n += 1\nexcept OSError as e:\n"
        "    print(n, e.strerror)"
    )
    result = await sb.run_python(code)
    written, reason = result.stdout.split(" ", 1)
    assert reason.strip() == "No space left on device" and int(written) <= 32
    tmp = await sb.run_shell("head -c 20000000 /dev/zero > /tmp/fill; echo $?")
    assert "No space left on device" in tmp.stderr
    assert (await sb.run_shell("rm fill /tmp/fill && echo ok > small && cat small")).stdout == "ok\n"


@pytest.mark.parametrize(
    "path", ["/evil", "/usr/evil", "/etc/evil", "/etc/passwd", "/opt/agentkit/runner.py", "/bin/sh"]
)
async def test_writing_outside_the_tmpfs_fails(sb: Sandbox, path: str) -> None:
    refused = ("Read-only file system", "Permission denied")
    result = await sb.run_python(f"open({path!r}, 'a').write('x')")
    assert result.exc_type in ("OSError", "PermissionError") and any(
        r in (result.exc_message or "") for r in refused
    )
    shell = await sb.run_shell(f"echo x >> {path}")
    assert shell.exit_code != 0 and any(r in shell.stderr for r in refused)


async def test_the_root_file_system_is_mounted_read_only(sb: Sandbox) -> None:
    mounts = {
        line.split()[1]: line.split()[3].split(",")
        for line in (await sb.run_shell("cat /proc/mounts")).stdout.splitlines()
    }
    assert "ro" in mounts["/"]
    assert "rw" in mounts["/work"] and "rw" in mounts["/tmp"] and "noexec" in mounts["/tmp"]


async def test_host_paths_are_not_visible(sb: Sandbox) -> None:
    secret = uuid.uuid4().hex
    canaries = [f"/tmp/agentkit-canary-{secret}", f"/root/agentkit-canary-{secret}"]
    for path in canaries:
        Path(path).write_text(secret)  # noqa: ASYNC240 - a tiny local write in a test
    try:
        probe = (
            "import os\n"
            f"for p in {canaries!r} + ['/var/run/docker.sock', '/run/docker.sock', '/work/main', '/proc/1/root{canaries[0]}']:\n"
            "    print(p, os.path.exists(p))\n"
            "print('shadow', os.access('/etc/shadow', os.R_OK))\n"
            "print(open('/etc/hostname').read().strip())"
        )
        result = await sb.run_python(probe)
        lines = result.stdout.splitlines()
        assert all(line.endswith(" False") for line in lines[:-1]), result.stdout
        assert lines[-1] != socket.gethostname()
        grep = await sb.run_shell(f"grep -rs {secret} /tmp /work /etc /opt /root /home; echo rc=$?")
        assert grep.stdout == "rc=2\n" or grep.stdout == "rc=1\n"
    finally:
        for path in canaries:
            os.unlink(path)


async def test_no_network_by_ip_or_name(sb: Sandbox) -> None:
    code = (
        "import socket, urllib.request\n"
        "for target in [('1.1.1.1', 53), ('8.8.8.8', 443), ('172.17.0.1', 2375)]:\n"
        "    try:\n        socket.create_connection(target, timeout=2)\n        print('OPEN', target)\n"
        "    except OSError as e:\n        print('blocked', e.strerror)\n"
        "try:\n    socket.getaddrinfo('deb.debian.org', 80)\n    print('RESOLVED')\n"
        "except OSError as e:\n    print('no dns')\n"
        "try:\n    urllib.request.urlopen('http://example.com', timeout=2)\n    print('FETCHED')\n"
        "except OSError as e:\n    print('no http')\n"
        "print(sorted(n for _, n in socket.if_nameindex()))"
    )
    result = await sb.run_python(code)
    assert result.stdout.splitlines() == [
        "blocked Network is unreachable",
        "blocked Network is unreachable",
        "blocked Network is unreachable",
        "no dns",
        "no http",
        "['lo']",
    ], result


async def test_raw_and_packet_sockets_are_refused(sb: Sandbox) -> None:
    code = (
        "import socket\n"
        "for fam, typ, proto in [(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), "
        "(socket.AF_PACKET, socket.SOCK_RAW, 0x0300)]:\n"
        "    try:\n        socket.socket(fam, typ, proto)\n        print('OPENED')\n"
        "    except OSError as e:\n        print(type(e).__name__)"
    )
    result = await sb.run_python(code)
    assert result.stdout.split() == [
        "PermissionError",
        "OSError",
    ]  # no CAP_NET_RAW; AF_PACKET refused by our seccomp


async def test_no_privilege_escalation(sb: Sandbox) -> None:
    py = await sb.run_python(
        "import os\nfor f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/tmp'), "
        "lambda: os.mknod('/tmp/dev', 0o600 | 0o20000, os.makedev(1, 3))):\n"
        "    try:\n        f()\n        print('ALLOWED')\n    except OSError as e:\n        print(type(e).__name__)"
    )
    assert py.stdout.split() == ["PermissionError"] * 4
    setuid = await sb.run_shell("find / -xdev -perm -4000 -type f 2>/dev/null")
    binaries = setuid.stdout.split()
    assert "/usr/bin/su" in binaries  # present in the image, but no-new-privileges makes the bit inert
    su = await sb.run_shell("su -c id root </dev/null; unshare -Ur id; id -u")
    assert "uid=0" not in su.stdout and su.stdout.strip().endswith(str(sb.uid))


async def test_the_runner_cannot_be_killed_or_read_from_inside(sb: Sandbox) -> None:
    await sb.run_python("kept = 'state'")
    code = (
        "import os, signal\n"
        "for pid in (1, os.getppid()):\n"
        "    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):\n"
        "        try:\n            os.kill(pid, sig)\n        except PermissionError:\n            pass\n"
        "for path in ('/proc/1/mem', '/proc/1/environ', '/proc/1/fd/0'):\n"
        "    try:\n        open(path, 'rb').read(1)\n        print('READ', path)\n"
        "    except OSError as e:\n        print(type(e).__name__)"
    )
    result = await sb.run_python(code)
    assert result.stdout.split() == ["PermissionError"] * 3, result
    assert sb.alive
    assert (await sb.run_python("print(kept)")).stdout == "state\n"
    shell = await sb.run_shell("kill -9 1; kill -STOP 1; echo after")
    assert shell.stdout == "after\n"
    assert (await sb.ping()) < 1.0


async def test_huge_single_line_without_newline(sb: Sandbox) -> None:
    result = await sb.run_python("import sys\n_ = sys.stdout.write('x' * 5_000_000)")
    assert result.ok and result.truncated and result.stdout_bytes == 5_000_000
    assert len(result.stdout) < 64 * 1024 + 200
    assert result.stdout.startswith("x" * 1000) and result.stdout.endswith("x" * 1000)


async def test_binary_garbage_on_stdout(sb: Sandbox) -> None:
    fake_frame = 'b\'\\x00\\x00\\x00\\x10{"id": 1, "ok": 1}\''
    result = await sb.run_python(
        f"import os, sys\n_ = sys.stdout.buffer.write({fake_frame} + os.urandom(300_000))\n"
        "_ = sys.stderr.buffer.write(bytes(range(256)))"
    )
    assert result.ok and result.truncated and result.stdout_bytes == 300_000 + 22
    assert "\ufffd" in result.stdout and '{"id": 1, "ok": 1}' in result.stdout
    assert len(result.stderr) == 256 - 128 + 128  # the high half decodes to U+FFFD, one each
    assert (await sb.run_python("print('protocol intact')")).stdout == "protocol intact\n"


async def test_output_written_by_background_children_does_not_leak_into_the_next_call(sb: Sandbox) -> None:
    await sb.run_python(
        "import subprocess\nsubprocess.Popen(['bash', '-c', 'for i in $(seq 50); do echo leak; sleep 0.02; done'])"
    )
    later = await sb.run_python("import time\ntime.sleep(0.3)\nprint('clean')")
    assert later.stdout == "clean\n"


async def test_a_fork_bomb_left_running_after_the_cell_does_not_lock_the_sandbox(sb: Sandbox) -> None:
    bomb = (
        "import os\nif os.fork() == 0:\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\nprint('cell returned')"
    )
    assert (await sb.run_python(bomb)).stdout == "cell returned\n"
    await asyncio.sleep(0.5)  # the bomb fills the pids limit
    shell = await sb.run_shell("echo still usable")  # the runner clears the bomb when it cannot fork
    assert shell.stdout == "still usable\n"


async def test_code_that_cuts_its_own_channel_is_reported_quickly(sb: Sandbox) -> None:
    result = await sb.run_python("import os, time\nos.closerange(3, 1024)\ntime.sleep(30)", timeout=10)
    assert result.duration < 3 and result.state_reset and result.exit_code == 137
    assert "stopped answering" in (result.exc_message or "")
    assert (await sb.run_python("print('fresh')")).stdout == "fresh\n"


async def test_an_exception_that_cannot_be_printed(sb: Sandbox) -> None:
    result = await sb.run_python(
        "class Evil(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise Evil()"
    )
    assert result.exc_type == "Evil" and result.exit_code == 1
    assert (await sb.run_python("print('ok')")).stdout == "ok\n"
