"""The runner: PID 1 of every sandbox container. Standard library only; runs inside the container, never on the host.

It reads requests from its stdin (the container's attached stream) and answers on its stdout, one at a time:

    frame   = u32 big-endian length of header | header (JSON object) | payload (header["size"] bytes)
    request = {"id", "op": "python" | "shell" | "put_file" | "get_file" | "ping", ...}; payload = code, command, data
    answer  = {"id", "ok": true, ...} or {"id", "ok": false, "error", "errno"}; payload = stdout + stderr, or data

Python runs in a *kernel*: a child forked from the runner that keeps one namespace across calls (a notebook). Each
execution gets fresh pipes for stdout and stderr (passed to the kernel with SCM_RIGHTS), so output of one call never
bleeds into the next, the runner can cap what it keeps and stop a flood, and a wall-clock timeout kills everything the
call started without the runner's help being needed from the code. Shell commands run in `bash -c` in their own
process group, which is killed when the command returns, so background jobs (and shell fork bombs) do not outlive it.

Why PID 1: the kernel ignores signals sent to a namespace's init from inside it unless init handles them, so code in
the sandbox cannot kill the runner (it runs as the same uid); the runner also marks itself non-dumpable, so
/proc/1/mem and /proc/1/fd are closed to that code. As init it reaps orphaned processes, which would otherwise hold
pids of the container's pids limit.

This file is the entry point (the image's command): the main loop, shell commands and the file operations. Its
sibling modules hold the rest: `runner_wire` (constants, framing), `runner_procs` (reaping, killing, forking),
`runner_output` (capturing output, the answer of an execution) and `runner_kernel` (the Python kernel). The image
ships every `runner*.py` next to this file; its tag hashes all of them (image.py).
"""

import os
import signal
import sys
import time

# `python3 -I` leaves this file's directory off sys.path: put it there for the sibling modules, and take it off again
# so that user code (run by a fork of this process) sees the sys.path it would see anywhere else.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from runner_files import op_get_file, op_put_file  # noqa: E402
from runner_kernel import Kernel, op_python  # noqa: E402
from runner_output import Capture, collect, exec_answer  # noqa: E402
from runner_privs import drop_to_runner, seccomp_installed, uids  # noqa: E402
from runner_procs import (  # noqa: E402
    ExitWatch,
    for_user_code,
    fork_clearing,
    kill_all,
    kill_group,
    reap,
    set_dumpable,
    wait_status,
)
from runner_wire import MAX_MESSAGE, PROTOCOL, SPAWN_ENV, WORK, Channel, close_fds_except  # noqa: E402

sys.path.remove(_HERE)


# -- shell commands --------------------------------------------------------------------------------------------------


def op_shell(req, command, kernel):
    opts = req["opts"]
    started = time.monotonic()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        pid = _fork_for_shell(kernel)
    except OSError:
        for fd in (r_out, w_out, r_err, w_err):
            os.close(fd)
        return exec_answer(*_no_fork_answer(), opts, started, exit_code=126)
    if pid == 0:
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            close_fds_except()
            for_user_code()
            for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.chdir(WORK)
            os.execve("/bin/bash", ["bash", "-c", command.decode("utf-8", errors="replace")], SPAWN_ENV)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    watch = ExitWatch(pid)
    out, err, why = collect(
        r_out, r_err, [watch.fd], started + opts["timeout"], opts, exits={watch.fd: watch.exited}
    )
    watch.close()
    kill_group(pid)  # background jobs of the command end with it
    kernel.settle()  # and so does everything else it started (setsid, double forks)
    code = wait_status(pid)
    return exec_answer(out, err, why, opts, started, exit_code=code)


def _fork_for_shell(kernel):
    """Fork past an exhausted pids limit: first kill what the code left running, then, if the kernel's own threads
    hold the pids, the kernel too (its variables are lost, which the next Python call reports)."""
    try:
        return fork_clearing(spare=[kernel.pid] if kernel.pid else [])
    except BlockingIOError:
        if kernel.pid is None:
            raise
        kernel.stop()
        kernel.lost = True
        return fork_clearing(spare=())


def _no_fork_answer():
    out, err = Capture(1024), Capture(1024)
    err.add(b"[the command could not start: the sandbox's process limit stays exhausted]\n")
    return out, err, "done"


# -- main loop -------------------------------------------------------------------------------------------------------


def main():
    drop_to_runner()  # uid R, four capabilities, oom_score_adj -1000, our seccomp filter (runner_privs)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # init with a handler could be signalled from inside
    set_dumpable(False)
    channel = Channel(os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # a stray print of ours must never corrupt the protocol stream
    os.chdir(WORK)
    kernel = Kernel()
    kernel.start()
    kernel.settle()
    channel.send(
        {
            "id": 0,
            "ok": True,
            "op": "hello",
            "protocol": PROTOCOL,
            "python": sys.version.split()[0],
            "uids": uids,
            "seccomp": seccomp_installed(),
        }
    )
    while True:
        try:
            req = channel.receive(idle=reap)
        except EOFError:
            break
        payload_size = req.get("size", 0)
        try:
            op = req.get("op")
            if op == "put_file":
                header, data = op_put_file(req, channel)
            else:
                payload = channel.read(payload_size) if payload_size else b""
                if op == "python":
                    header, data = op_python(req, payload, kernel)
                elif op == "shell":
                    header, data = op_shell(req, payload, kernel)
                elif op == "get_file":
                    header, data = op_get_file(req)
                elif op == "ping":
                    header, data = {"ok": True, "kernel": kernel.alive()}, b""
                else:
                    header, data = {"ok": False, "error": f"unknown op {op!r}", "errno": 0}, b""
        except OSError as exc:
            header, data = (
                {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE], "errno": exc.errno or 0},
                b"",
            )
        except Exception as exc:
            header, data = (
                {
                    "ok": False,
                    "error": f"runner error: {type(exc).__name__}: {exc}"[:MAX_MESSAGE],
                    "errno": 0,
                },
                b"",
            )
        header["id"] = req.get("id")
        channel.send(header, data)
    kill_all()


if __name__ == "__main__":
    main()
