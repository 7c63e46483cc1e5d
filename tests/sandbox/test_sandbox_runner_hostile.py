"""Issue 40, the runner: code cannot fool it (forged or broken frames, huge fields, its descriptors) nor outlive the call
(setsid, new sessions, double forks, threads, unreaped children), at the default limits. Each case checks the result,
the sandbox's next call and, where it matters, a neighbour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from agentkit.sandbox import Sandbox

ProcessNames = Callable[[Sandbox], Awaitable[list[str]]]
Unaffected = Callable[[Sandbox], Awaitable[None]]

FORGE = """
import json, os, socket, struct, sys, time
cell = int(sys._getframe().f_code.co_filename.strip('<>').split()[-1])
sent = 0
for fd in map(int, os.listdir('/proc/self/fd')):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        continue
    for frame in (b'{"exit_code": 0}\\n', PAYLOAD):
        try:
            s.sendall(frame)
            sent += 1
        except OSError:
            pass
"""


async def test_a_forged_answer_is_not_taken_while_the_code_runs_on(dsb: Sandbox) -> None:
    body = 'json.dumps({"exit_code": 0, "cell": cell, "exc_type": None}).encode()'
    code = FORGE.replace("PAYLOAD", f"struct.pack('>I', len({body})) + {body}")
    result = await dsb.run_python(
        code + "time.sleep(1)\nprint('ran on', sent > 0)\nraise ValueError('real end')"
    )
    assert result.duration >= 1.0 and "ran on True" in result.stdout
    assert result.exc_type == "ValueError" and result.exit_code == 1 or result.state_reset, result
    assert (await dsb.run_python("print('next')")).stdout == "next\n"


async def test_a_lone_brace_does_not_wedge_the_runner(dsb: Sandbox) -> None:
    await dsb.run_python("kept = 1")
    t0 = time.perf_counter()
    result = await dsb.run_python(FORGE.replace("PAYLOAD", "b'{'") + "print('returned')")
    assert time.perf_counter() - t0 < 3.0 and not result.timed_out
    assert result.state_reset and "malformed" in (result.exc_message or ""), result
    assert (await dsb.run_python("print('kept' in globals())")).stdout == "False\n"  # a fresh, working kernel
    assert await dsb.ping() < 1.0


async def test_huge_exception_names_and_messages_are_capped(dsb: Sandbox) -> None:
    result = await dsb.run_python("raise type('E' * 3_000_000, (Exception,), {})('m' * 3_000_000)")
    assert result.exit_code == 1 and result.exc_type == "E" * 200
    assert result.exc_message is not None and len(result.exc_message) <= 4000
    exit_ = await dsb.run_python("raise SystemExit('x' * 3_000_000)")
    assert exit_.exit_code == 1 and len(exit_.exc_message or "") <= 4000
    assert (await dsb.run_python("print('next')")).stdout == "next\n"


async def test_user_code_holds_none_of_the_runners_descriptors(dsb: Sandbox) -> None:
    listing = (
        "import os\nfor fd in sorted(map(int, os.listdir('/proc/self/fd'))):\n"
        "    try:\n        print(fd, os.readlink(f'/proc/self/fd/{fd}'))\n    except OSError:\n        pass"
    )
    fds = dict(line.split(" ", 1) for line in (await dsb.run_python(listing)).stdout.splitlines())
    kinds = [target.split(":")[0] for target in fds.values()]
    assert kinds.count("socket") == 1  # the kernel's own end of its channel, nothing of the runner's
    assert not [k for k in kinds if "pidfd" in k or "eventpoll" in k], fds
    shell = await dsb.run_shell("ls -l /proc/self/fd | tail -n +2 | awk '{print $9, $11}'")
    held = dict(line.split(" ", 1) for line in shell.stdout.splitlines())
    assert set(held) - {"0", "1", "2"} <= {"3"} and held.get("3", "/proc").startswith("/proc"), held


async def test_nothing_the_code_started_outlives_the_call(
    dsb: Sandbox, dneighbour: Sandbox, assert_unaffected: Unaffected, process_names: ProcessNames
) -> None:
    await dsb.run_shell(
        "setsid -f sh -c 'while :; do :; done'; (sleep 1000 &) ; nohup sleep 999 >/dev/null 2>&1 &"
    )
    assert await process_names(dsb) == ["python3", "python3"]
    await dsb.run_python(
        "import os, subprocess\n"
        "subprocess.Popen(['sh', '-c', 'while :; do :; done'], start_new_session=True)\n"
        "if os.fork() == 0:\n    if os.fork() == 0:\n        os.setsid()\n        while True: pass\n    os._exit(0)\n"
        "os.wait()"
    )
    assert await process_names(dsb) == ["python3", "python3"]
    await assert_unaffected(dneighbour)


async def test_threads_do_not_run_between_calls(dsb: Sandbox) -> None:
    await dsb.run_python(
        "import threading, time\nticks = [0]\n"
        "def spin():\n    while True:\n        ticks[0] += 1\n        time.sleep(0.01)\n"
        "threading.Thread(target=spin, daemon=True).start()\ntime.sleep(0.1)\nseen = ticks[0]"
    )
    await asyncio.sleep(1.0)
    result = await dsb.run_python("print(ticks[0] - seen)")
    assert int(result.stdout) < 20  # ~100 if it had run during the second between the calls


async def test_threads_and_zombies_left_by_the_interpreter_do_not_break_the_shell(dsb: Sandbox) -> None:
    await dsb.run_python(
        "import subprocess, threading, time\n"
        "kids = [subprocess.Popen(['true']) for _ in range(40)]\n"
        "def hold():\n    time.sleep(3600)\n"
        "threads = []\nfor _ in range(200):\n    try:\n        t = threading.Thread(target=hold, daemon=True)\n"
        "        t.start()\n        threads.append(t)\n    except RuntimeError:\n        break\nprint(len(threads))",
    )
    shell = await dsb.run_shell("echo shell works")
    assert shell.stdout == "shell works\n", shell
    after = await dsb.run_python("print('python works')")
    assert after.stdout == "python works\n"
