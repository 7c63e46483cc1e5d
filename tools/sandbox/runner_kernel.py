"""The Python kernel: a child forked from the runner that keeps one namespace across calls (a notebook), and the
`python` request that sends it a cell with fresh pipes for its output.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.
"""

import ast
import builtins
import json
import linecache
import os
import signal
import socket
import struct
import sys
import time
import traceback

from runner_output import collect, exec_answer
from runner_procs import (
    ExitWatch,
    exit_code_soon,
    for_user_code,
    fork_clearing,
    kill_all,
    reap,
    statuses,
    wait_status,
    zombies_of,
)
from runner_wire import CHUNK, EXIT_KILLED, MAX_MESSAGE, MAX_NAME, close_fds_except


def kernel_main(sock):
    """Loop in the kernel process: receive (code, stdout fd, stderr fd), run the code, answer on `sock`.

    While idle (waiting for the next cell) a SIGCHLD handler reaps whatever the runner killed after the last call, so
    no zombie of ours holds a pid; during a cell the default disposition is back, so `subprocess` sees its own exit
    statuses.
    """
    me = os.getpid()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    devnull = os.open(os.devnull, os.O_RDWR)
    real_stdout, real_stderr = sys.stdout, sys.stderr
    while True:
        signal.signal(signal.SIGCHLD, _reap_children)
        msg, fds, _, _ = socket.recv_fds(sock, 16, 2)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _reap_children()
        if len(msg) < 16 or len(fds) != 2:
            os._exit(0)
        length, cell = struct.unpack(">QQ", msg)
        code = bytearray()
        while len(code) < length:
            part = sock.recv(min(CHUNK, length - len(code)))
            if not part:
                os._exit(0)
            code += part
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
        answer["cell"] = cell
        signal.signal(signal.SIGCHLD, _reap_children)
        _reap_children()  # children that ended during the cell: none of them may hold a pid after it
        data = json.dumps(answer).encode()
        sock.sendall(struct.pack(">I", len(data)) + data)


def _reap_children(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


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
        return {"exit_code": code, "exc_type": "SystemExit", "exc_message": str(exc.code)[:MAX_MESSAGE]}
    except BaseException as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        if isinstance(exc, SyntaxError):
            tb = None
        try:
            sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
        except Exception:
            pass
        try:
            message = str(exc)[:MAX_MESSAGE]
        except Exception:
            message = "<the exception's message could not be computed>"
        return {"exit_code": 1, "exc_type": type(exc).__name__[:MAX_NAME], "exc_message": message}


class Kernel:
    """The runner's handle on the kernel process; started ahead of need, restarted after it dies or is killed.

    Between calls the kernel is stopped (SIGSTOP): threads the code left behind do not run until the next cell, and
    every other process the code started is killed after each call (`settle`).
    """

    def __init__(self):
        self.pid = None
        self.sock = None
        self.watch = None
        self.child_fd = -1
        self.cell = 0
        self.lost = (
            False  # killed outside op_python (to free pids for a shell command): report it on the next cell
        )

    def alive(self):
        if self.pid is None:
            return False
        reap()
        return self.pid not in statuses

    def start(self):
        parent, child = socket.socketpair()
        pid = fork_clearing(spare=())
        if pid == 0:
            try:
                for fd in (0, 1, 2):
                    os.dup2(os.open(os.devnull, os.O_RDWR), fd)
                signal.set_wakeup_fd(
                    -1
                )  # the runner's SIGCHLD self-pipe (runner_procs.ExitWatch) is not ours
                close_fds_except(
                    child.fileno()
                )  # none of the runner's descriptors: only its end of the socket
                os.setsid()
                for_user_code()
                kernel_main(child)
            finally:
                os._exit(70)
        self.child_fd = child.fileno()
        child.close()
        self.watch = ExitWatch(pid)
        self.pid, self.sock = pid, parent
        self.sock.setblocking(False)

    def signal(self, sig):
        if self.pid is not None:
            try:
                os.kill(self.pid, sig)
            except OSError:
                pass

    def stop(self):
        """Kill the kernel and everything in the container but the runner (state is lost)."""
        try:
            os.kill(-1, signal.SIGKILL)  # every process we may signal, at once (a fork bomb cannot outrun it)
        except OSError:
            pass
        kill_all()
        if self.pid is not None:
            wait_status(self.pid)
        if self.sock is not None:
            self.sock.close()
            self.watch.close()
        self.pid = self.sock = self.watch = None

    def idle(self):
        """True when the kernel has exited or closed its socket, or when the kernel's main thread waits for the next cell on its socket (the answer it sent is the
        kernel's, not a frame forged by code that then runs on); True also where this cannot be seen."""
        try:
            if self.sock.recv(1, socket.MSG_PEEK) == b"":
                return True  # the code closed the kernel's end: nothing will come, collect the death now
        except OSError:
            pass
        if RECVMSG is None:
            return True
        try:
            with open(f"/proc/{self.pid}/syscall", "rb") as f:
                parts = f.read().split()
        except OSError:
            return True
        if not parts or parts[0] == b"running" and not self.alive():
            return True
        return len(parts) > 1 and parts[0] == RECVMSG and int(parts[1], 16) == self.child_fd

    def settle(self):
        """After a call: kill every other process the code started, let the kernel reap them, then stop it."""
        spare = [self.pid] if self.pid is not None else []
        killed = kill_all(spare=spare)
        if self.pid is not None:
            deadline = time.monotonic() + 0.2
            while killed and zombies_of(self.pid) and time.monotonic() < deadline:
                time.sleep(0.001)
            self.signal(signal.SIGSTOP)


def op_python(req, code, kernel):
    opts = req["opts"]
    started = time.monotonic()
    deadline = started + opts["timeout"]
    reset, kernel.lost = kernel.lost, False
    if not kernel.alive():
        if kernel.pid is not None:
            kernel.stop()
            reset = True
        kernel.start()
    kernel.cell += 1
    fields = {"state_reset": reset}
    if not _drain_stale(kernel.sock):
        kernel.stop()
        kernel.start()
        fields["state_reset"] = True
    kernel.signal(signal.SIGCONT)
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        kernel.sock.setblocking(True)
        socket.send_fds(kernel.sock, [struct.pack(">QQ", len(code), kernel.cell)], [w_out, w_err])
        kernel.sock.sendall(code)
    except OSError:
        pass  # the kernel is gone; collect() sees its socket at end of file
    finally:
        kernel.sock.setblocking(False)
    os.close(w_out)
    os.close(w_err)
    exits = {kernel.watch.fd: kernel.watch.exited}
    out, err, why = collect(
        r_out, r_err, [kernel.watch.fd, kernel.sock.fileno()], deadline, opts, kernel.idle, exits
    )
    if why == "done":
        answer, problem = _read_answer(kernel)
        if answer is not None:
            fields.update(answer)
        else:
            code = exit_code_soon(kernel.pid, 0.5) if problem == "closed" else None
            kernel.stop()
            fields["exit_code"] = EXIT_KILLED if code is None else code
            fields["exc_type"] = None
            fields["exc_message"] = _death_message(code) if problem == "closed" else problem
            err.add(f"\n[{fields['exc_message']}]\n".encode())
            fields["state_reset"] = True
    if why != "done":
        kernel.stop()
        fields["state_reset"] = True
    kernel.settle()
    fields.setdefault("exc_type", None)
    fields.setdefault("exc_message", None)
    return exec_answer(out, err, why, opts, started, **fields)


def _drain_stale(sock):
    """Throw away whatever code left on the kernel's socket between calls; False if it will not stop."""
    for _ in range(64):
        try:
            if not sock.recv(CHUNK):
                return True
        except BlockingIOError:
            return True
        except OSError:
            return True
    return False


def _read_answer(kernel):
    """(answer, None) or (None, "closed" | what was wrong). Called once the kernel is idle again, so its own answer,
    one frame of at most MAX_ANSWER bytes, is complete on the socket; the last frame for this cell counts (a frame
    the code forged came before it). Anything that is not whole frames means the channel was tampered with."""
    data = bytearray()
    end = time.monotonic() + ANSWER_WAIT
    while True:
        try:
            part = kernel.sock.recv(CHUNK)
        except BlockingIOError:
            part = None
        except OSError:
            part = b""
        if part == b"":
            if not data:
                return None, "closed"
            break
        if part:
            data += part
            if len(data) > 4 * MAX_ANSWER:
                return None, MALFORMED + " (a flood)"
            continue
        if _frames(data) or time.monotonic() > end:
            break
        time.sleep(0.0002)
    frames = _frames(data)
    if frames is None:
        return None, MALFORMED + " (not frames)"
    try:
        answer = json.loads(frames[-1])
    except ValueError:
        return None, MALFORMED + " (not JSON)"
    if not isinstance(answer, dict) or answer.get("cell") != kernel.cell:
        return None, MALFORMED + " (not the answer to this cell)"
    return _clean(answer), None


def _frames(data):
    """The frames in `data` if it is a whole number of them (at least one), else None."""
    frames, pos = [], 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if length > MAX_ANSWER or pos + 4 + length > len(data):
            return None
        frames.append(bytes(data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return frames if frames and pos == len(data) else None


def _clean(answer):
    """The kernel's answer reduced to known fields of known types and sizes (it is written by user code's process)."""
    code = answer.get("exit_code", 0)
    out = {"exit_code": code if isinstance(code, int) and -(2**31) <= code < 2**31 else 1}
    for key, cap in (("exc_type", MAX_NAME), ("exc_message", MAX_MESSAGE)):
        value = answer.get(key)
        out[key] = value[:cap] if isinstance(value, str) else None
    return out


MALFORMED = (
    "the Python process sent a malformed answer (its channel to the runner was tampered with) and was killed"
)
ANSWER_WAIT = 0.5
MAX_ANSWER = 64 * 1024
RECVMSG = {"x86_64": b"47", "aarch64": b"212"}.get(os.uname().machine)


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
