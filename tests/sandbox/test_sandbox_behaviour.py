"""Behaviour of one sandbox: notebook state, output, exit codes, exceptions, files, isolation between sandboxes."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable

import pytest

from agentkit.sandbox import Sandbox, SandboxLimits


async def test_python_state_persists_across_calls(sb: Sandbox) -> None:
    assert (await sb.run_python("import math\nx = 6")).ok
    result = await sb.run_python("def f(y):\n    return x * y\nprint(f(7), math.pi > 3)")
    assert result.stdout == "42 True\n"
    assert (await sb.run_python("x + 1")).stdout == "7\n"  # a final expression is shown, as in a notebook
    assert (await sb.run_python("None")).stdout == ""


async def test_no_stdin_input_fails_fast(sb: Sandbox) -> None:
    result = await sb.run_python("input('name? ')", timeout=3)
    assert result.exc_type == "EOFError" and not result.timed_out
    shell = await sb.run_shell('read line; echo "got:$line:$?"', timeout=3)
    assert shell.stdout == "got::1\n" and not shell.timed_out  # read hits end of file at once


async def test_unicode_and_separate_streams(sb: Sandbox) -> None:
    result = await sb.run_python("import sys\nprint('héllo, 世界 🎉')\nprint('ωarn', file=sys.stderr)")
    assert result.stdout == "héllo, 世界 🎉\n"
    assert result.stderr == "ωarn\n"
    shell = await sb.run_shell("printf 'ünï\\n'; echo oops >&2")
    assert (shell.stdout, shell.stderr) == ("ünï\n", "oops\n")


async def test_exit_codes(sb: Sandbox) -> None:
    assert (await sb.run_shell("exit 7")).exit_code == 7
    assert (await sb.run_shell("true")).exit_code == 0
    assert (await sb.run_shell("no-such-command")).exit_code == 127
    exited = await sb.run_python("import sys\nsys.exit(3)")
    assert (exited.exit_code, exited.exc_type) == (3, "SystemExit")
    assert (await sb.run_python("print('alive')")).stdout == "alive\n"  # SystemExit does not end the session
    crashed = await sb.run_python("import os\nos._exit(5)")
    assert crashed.exit_code == 5 and crashed.state_reset


async def test_exceptions_carry_type_message_and_traceback(sb: Sandbox) -> None:
    result = await sb.run_python("def g():\n    raise ValueError('bad value 42')\ng()")
    assert (result.exit_code, result.exc_type, result.exc_message) == (1, "ValueError", "bad value 42")
    assert 'File "<cell 1>", line 2, in g' in result.stderr
    assert "runner.py" not in result.stderr  # no frames of the runner itself
    syntax = await sb.run_python("def broken(:\n    pass")
    assert syntax.exc_type == "SyntaxError" and "invalid syntax" in syntax.stderr


async def test_files_in_and_out_binary_and_large(sb: Sandbox) -> None:
    blob = os.urandom(256) * 40_000  # 10 MiB, every byte value
    path = await sb.put_file("data/blob.bin", blob)
    assert path == "/work/data/blob.bin"
    assert (await sb.run_python("print(len(open('data/blob.bin', 'rb').read()))")).stdout == f"{len(blob)}\n"
    assert await sb.get_file("/work/data/blob.bin") == blob
    await sb.run_shell("printf 'from shell\\n' > made.txt && mkdir -p x && printf 'é' > x/t")
    assert await sb.get_file("made.txt") == b"from shell\n"
    assert (await sb.get_file("x/t")).decode() == "é"
    await sb.put_file("empty", b"")
    assert await sb.get_file("empty") == b""


async def test_file_errors_are_os_errors(limits: SandboxLimits) -> None:
    async with Sandbox(limits.replace(max_file="1m")) as sb:
        with pytest.raises(FileNotFoundError):
            await sb.get_file("nope.txt")
        with pytest.raises(OSError) as ro:
            await sb.put_file("/etc/evil", b"x")
        assert ro.value.errno == errno.EACCES and "outside /work" in str(ro.value)
        await sb.run_shell("head -c 2000000 /dev/zero > big")
        with pytest.raises(OSError) as big:
            await sb.get_file("big")
        assert big.value.errno == errno.EFBIG and "more than the 1048576 bytes" in str(big.value)
        assert (await sb.run_python("print('protocol intact')")).stdout == "protocol intact\n"


async def test_concurrent_sandboxes_are_isolated(limits: SandboxLimits) -> None:
    async with asyncio.TaskGroup() as tg:
        boxes = [tg.create_task(Sandbox(limits).start()) for _ in range(4)]
    sandboxes = [b.result() for b in boxes]
    try:
        await asyncio.gather(
            *(
                s.run_python(f"import time\nsecret = {i}\nopen('mine', 'w').write('{i}')\ntime.sleep(0.3)")
                for i, s in enumerate(sandboxes)
            )
        )
        results = await asyncio.gather(
            *(
                s.run_python(
                    "import os\nprint(secret, open('mine').read(), len([p for p in os.listdir('/proc') if p.isdigit()]))"
                )
                for s in sandboxes
            )
        )
        for i, r in enumerate(results):
            secret, mine, nprocs = r.stdout.split()
            assert (secret, mine) == (str(i), str(i))
            assert int(nprocs) <= 3  # runner and kernel (and nothing from the other sandboxes)
        assert len({s.container_id for s in sandboxes}) == 4
    finally:
        await asyncio.gather(*(s.close() for s in sandboxes))


async def test_shell_background_jobs_end_with_the_command(
    sb: Sandbox, process_names: Callable[[Sandbox], Awaitable[list[str]]]
) -> None:
    result = await sb.run_shell("sleep 300 & echo started")
    assert result.stdout == "started\n" and result.duration < 2
    assert await process_names(sb) == ["python3", "python3"]  # runner and kernel only: the sleep is gone


async def test_execution_timeout_is_per_call(sb: Sandbox) -> None:
    fast = await sb.run_python("import time\ntime.sleep(0.2)\nprint('ok')", timeout=2)
    assert fast.ok and 0.2 <= fast.duration < 1.5
    slow = await sb.run_shell("sleep 5", timeout=0.5)
    assert slow.timed_out and slow.exit_code == 137 and slow.duration < 2
