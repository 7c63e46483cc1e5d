"""The Python kernel: a child forked from the runner that keeps one namespace across calls (a notebook), and the
`python` request that sends it a cell with fresh pipes for its output.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.
"""

import ast
import builtins
import json
import linecache
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback

from runner_output import collect, exec_answer
from runner_procs import exit_code_soon, for_user_code, fork_clearing, kill_all, reap, statuses, wait_status
from runner_wire import CHUNK, EXIT_KILLED


def kernel_main(sock):
    """Loop in the kernel process: receive (code, stdout fd, stderr fd), run the code, answer on `sock`."""
    me = os.getpid()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    devnull = os.open(os.devnull, os.O_RDWR)
    real_stdout, real_stderr = sys.stdout, sys.stderr
    cell = 0
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 8, 2)
        if len(msg) < 8 or len(fds) != 2:
            os._exit(0)
        (length,) = struct.unpack(">Q", msg)
        code = bytearray()
        while len(code) < length:
            part = sock.recv(min(CHUNK, length - len(code)))
            if not part:
                os._exit(0)
            code += part
        cell += 1
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.close(fds[0])
        os.close(fds[1])
        sys.stdout, sys.stderr = real_stdout, real_stderr
        answer = run_cell(code.decode("utf-8", errors="replace"), f"<cell {cell}>", namespace)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if os.getpid() != me:  # a child forked by the cell reached its end: it must not answer for the kernel
            os._exit(answer.get("exit_code", 0))
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sock.sendall(json.dumps(answer).encode() + b"\n")


def run_cell(source, filename, namespace):
    """Execute a cell like a notebook: statements, then the value of a final expression printed if not None."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        tree = ast.parse(source, filename, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
            if value is not None:
                print(repr(value))
        return {"exit_code": 0}
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        return {"exit_code": code, "exc_type": "SystemExit", "exc_message": str(exc.code)}
    except BaseException as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        if isinstance(exc, SyntaxError):
            tb = None
        try:
            sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
        except Exception:
            pass
        try:
            message = str(exc)[:4000]
        except Exception:
            message = "<the exception's message could not be computed>"
        return {"exit_code": 1, "exc_type": type(exc).__name__, "exc_message": message}


class Kernel:
    """The runner's handle on the kernel process; started ahead of need, restarted after it dies or is killed."""

    def __init__(self):
        self.pid = None
        self.sock = None
        self.pidfd = None

    def alive(self):
        if self.pid is None:
            return False
        reap()
        return self.pid not in statuses

    def start(self, channel):
        parent, child = socket.socketpair()
        pid = fork_clearing(spare=())
        if pid == 0:
            try:
                parent.close()
                os.close(channel.fd_in)
                os.close(channel.fd_out)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.setsid()
                for_user_code()
                kernel_main(child)
            finally:
                os._exit(70)
        child.close()
        self.pid, self.sock, self.pidfd = pid, parent, os.pidfd_open(pid)

    def stop(self):
        """Kill the kernel and everything in the container but the runner (state is lost)."""
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        kill_all()
        if self.pid is not None:
            wait_status(self.pid)
        if self.sock is not None:
            self.sock.close()
            os.close(self.pidfd)
        self.pid = self.sock = self.pidfd = None


def op_python(req, code, channel, kernel):
    opts = req["opts"]
    started = time.monotonic()
    reset = False
    if not kernel.alive():
        if kernel.pid is not None:
            kernel.stop()
            reset = True
        kernel.start(channel)
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        socket.send_fds(kernel.sock, [struct.pack(">Q", len(code))], [w_out, w_err])
        kernel.sock.sendall(code)
    except OSError:
        pass  # the kernel is gone; collect() sees its socket at end of file
    os.close(w_out)
    os.close(w_err)
    out, err, why = collect(
        r_out, r_err, [kernel.sock.fileno(), kernel.pidfd], started + opts["timeout"], opts
    )
    fields = {"state_reset": reset}
    if why == "done":
        line = _read_line(kernel.sock) if _readable(kernel.sock) else b""
        if line:
            fields.update(json.loads(line))
        else:  # the kernel died during the cell (os._exit, OOM kill, a signal), or closed its socket
            code = exit_code_soon(kernel.pid, 0.5)
            kernel.stop()
            fields["exit_code"] = EXIT_KILLED if code is None else code
            fields["exc_type"] = None
            fields["exc_message"] = _death_message(code)
            err.add(f"\n[{fields['exc_message']}]\n".encode())
            fields["state_reset"] = True
    else:
        kernel.stop()
        fields["state_reset"] = True
    fields.setdefault("exc_type", None)
    fields.setdefault("exc_message", None)
    return exec_answer(out, err, why, opts, started, **fields)


def _readable(sock):
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))


def _read_line(sock):
    data = bytearray()
    while not data.endswith(b"\n"):
        try:
            part = sock.recv(CHUNK)
        except OSError:
            return b""
        if not part:
            return b""
        data += part
    return bytes(data)


def _death_message(code):
    if code is None:
        return (
            "the Python process stopped answering (it closed its channel) and was killed; variables were lost"
        )
    if code == EXIT_KILLED:
        return "the Python process was killed (SIGKILL; most often the memory limit); variables were lost"
    if code > 128:
        return f"the Python process died of signal {code - 128}; variables were lost"
    return f"the Python process exited with code {code}; variables were lost"
