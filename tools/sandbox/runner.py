"""The runner: PID 1 of every sandbox container. Standard library only; copied into the image, never imported.

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
"""

import ast
import builtins
import ctypes
import errno
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

PROTOCOL = 1
WORK = os.environ.get("HOME", "/work")
CHUNK = 1 << 16
EXIT_KILLED = 128 + signal.SIGKILL
SPAWN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORK,
    "LANG": "C.UTF-8",
    "PYTHONUTF8": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "TERM": "dumb",
}

_statuses: dict[int, int] = {}  # pid -> wait status of children reaped by reap()


# -- framing ---------------------------------------------------------------------------------------------------------


class Channel:
    """Frames over two file descriptors (the attached stdin and a private duplicate of stdout)."""

    def __init__(self, fd_in, fd_out):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.buf = bytearray()

    def _fill(self, n, idle=None):
        while len(self.buf) < n:
            if idle is not None and not self.buf:
                ready = selectors.DefaultSelector()
                ready.register(self.fd_in, selectors.EVENT_READ)
                while not ready.select(1.0):
                    idle()
                ready.close()
            chunk = os.read(self.fd_in, max(CHUNK, n - len(self.buf)))
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self, n, idle=None):
        self._fill(n, idle)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def receive(self, idle):
        (length,) = struct.unpack(">I", self.read(4, idle))
        header = json.loads(self.read(length))
        return header

    def read_payload_to(self, size, sink):
        """Stream `size` payload bytes into `sink(chunk)` without holding them all in memory."""
        while size > 0:
            if not self.buf:
                self._fill(1)
            take = min(size, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            size -= take

    def send(self, header, payload=b""):
        header["size"] = len(payload)
        head = json.dumps(header).encode()
        self.write(struct.pack(">I", len(head)) + head + payload)

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd_out, view)
            view = view[n:]


# -- processes -------------------------------------------------------------------------------------------------------


def reap():
    """Collect every exited child (as init we also inherit orphans); remember their statuses."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _statuses[pid] = status


def wait_status(pid):
    """Exit status of our child `pid` as a shell would report it (128+N for a signal); blocks until it exits."""
    while pid not in _statuses:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            reap()
            break
        _statuses[pid] = status
    status = _statuses.pop(pid, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _is_live(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] != b"Z"


def _stat(pid):
    """(state, pgid) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[3])


def kill_group(pgid):
    """SIGKILL a process group and wait (briefly) until none of it is alive, so the next request starts clean."""
    for _ in range(200):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            break  # no process left in the group
        reap()
        if not _group_alive(pgid):
            break
        time.sleep(0.001)
    reap()


def _group_alive(pgid):
    for p in os.listdir("/proc"):
        stat = _stat(p) if p.isdigit() else None
        if stat is not None and stat[0] != b"Z" and stat[1] == pgid:
            return True
    return False


def kill_all(spare=()):
    """SIGKILL every process in the container except init (us) and `spare`; freeze first so nothing can fork."""
    spare = {1, os.getpid(), *spare}
    for _ in range(100):
        victims = [
            int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in spare and _is_live(int(p))
        ]
        if not victims:
            reap()
            return True
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        reap()
        time.sleep(0.002)
    return False


def fork_clearing(spare):
    """os.fork(); if the pids limit is exhausted (a fork bomb left behind), kill everything but init and `spare`
    and try again, so the sandbox stays usable."""
    try:
        return os.fork()
    except BlockingIOError:
        kill_all(spare=spare)
        return os.fork()


def set_dumpable(flag):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, int(flag), 0, 0, 0)  # PR_SET_DUMPABLE
    except Exception:
        pass


def for_user_code():
    """In a child about to run user code: be the OOM killer's first choice, and default signal handling."""
    set_dumpable(True)  # our /proc/self files belong to us again (the runner itself is non-dumpable)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- output capture --------------------------------------------------------------------------------------------------


class Capture:
    """Keeps the head and the tail of a stream within `cap` bytes and counts everything."""

    def __init__(self, cap):
        self.tail_cap = cap // 4
        self.head_cap = cap - self.tail_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk):
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_cap:
            self.tail += chunk
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def truncated(self):
        return self.total > len(self.head) + len(self.tail)

    def value(self):
        if not self.truncated:
            return bytes(self.head + self.tail)
        cut = self.total - len(self.head) - len(self.tail)
        marker = f"\n[... truncated: {cut} of {self.total} bytes not shown ...]\n".encode()
        return bytes(self.head) + marker + bytes(self.tail)


def collect(out_fd, err_fd, done_fds, deadline, opts):
    """Read both pipes until one of `done_fds` is readable, the deadline passes or output exceeds the kill limit.

    Returns (captures, why) with why in {"done", "timeout", "output"}; the pipes are closed on return.
    """
    caps = {out_fd: Capture(opts["max_output"]), err_fd: Capture(opts["max_output"])}
    sel = selectors.DefaultSelector()
    for fd in caps:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    for fd in done_fds:
        sel.register(fd, selectors.EVENT_READ)
    why = None
    open_fds = set(caps)
    while why is None:
        left = deadline - time.monotonic()
        if left <= 0:
            why = "timeout"
            break
        for key, _ in sel.select(min(left, 0.25)):
            fd = key.fd
            if fd in done_fds:
                why = "done"
            elif fd in open_fds:
                if not _drain(fd, caps[fd], CHUNK * 4):
                    sel.unregister(fd)
                    open_fds.discard(fd)
        if sum(c.total for c in caps.values()) > opts["kill_output"]:
            why = "output"
        reap()
    if why == "done":  # what the code wrote before it finished is already in the pipes
        for fd in open_fds:
            _drain(fd, caps[fd], opts["kill_output"])
    sel.close()
    for fd in caps:
        os.close(fd)
    return caps[out_fd], caps[err_fd], why


def _drain(fd, cap, budget):
    """Read what is available (up to `budget` bytes); False at end of file."""
    while budget > 0:
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        cap.add(chunk)
        budget -= len(chunk)
    return True


def exec_answer(out, err, why, opts, started, **fields):
    timed_out = why == "timeout"
    header = {
        "ok": True,
        "stdout_len": len(out.value()),
        "stdout_total": out.total,
        "stderr_total": err.total,
        "truncated": out.truncated or err.truncated,
        "timed_out": timed_out,
        "output_limited": why == "output",
        "duration": time.monotonic() - started,
        **fields,
    }
    if timed_out:
        header["exit_code"] = EXIT_KILLED
        note = f"\n[killed: the execution exceeded its {opts['timeout']:g} s timeout]\n"
        err.add(note.encode())
    elif why == "output":
        header["exit_code"] = EXIT_KILLED
        err.add(f"\n[killed: the execution wrote more than {opts['kill_output']} bytes of output]\n".encode())
    header["stdout_len"] = len(out.value())
    return header, out.value() + err.value()


# -- the Python kernel (a forked child that keeps the namespace) -----------------------------------------------------


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
        return self.pid not in _statuses

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
            code = _exit_code_soon(kernel.pid, 0.5)
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


def _exit_code_soon(pid, seconds):
    """The exit code of child `pid` if it exits within `seconds` (left for wait_status to collect), else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reap()
        if pid in _statuses:
            status = _statuses[pid]
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.002)
    return None


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


def op_shell(req, command, kernel):
    opts = req["opts"]
    started = time.monotonic()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = fork_clearing(spare=[kernel.pid] if kernel.pid else [])
    if pid == 0:
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            os.closerange(3, 65536)
            for_user_code()
            for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.chdir(WORK)
            os.execve("/bin/bash", ["bash", "-c", command.decode("utf-8", errors="replace")], SPAWN_ENV)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    pidfd = os.pidfd_open(pid)
    out, err, why = collect(r_out, r_err, [pidfd], started + opts["timeout"], opts)
    os.close(pidfd)
    kill_group(pid)  # background jobs of the command end with it
    if why != "done":
        kill_all(spare=[kernel.pid] if kernel.pid else [])
    code = wait_status(pid)
    return exec_answer(out, err, why, opts, started, exit_code=code)


# -- files -----------------------------------------------------------------------------------------------------------


def resolve(path):
    return os.path.normpath(os.path.join(WORK, path))


def op_put_file(req, channel):
    path = resolve(req["path"])
    size = req["size"]
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, req.get("mode", 0o644))
    except OSError:
        channel.read_payload_to(size, lambda _: None)
        raise
    failure = []

    def sink(chunk):
        if failure:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            failure.append(exc)

    try:
        channel.read_payload_to(size, sink)
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return {"ok": True, "path": path, "bytes": size}, b""


def op_get_file(req):
    path = resolve(req["path"])
    size = os.stat(path).st_size
    if size > req["max_bytes"]:
        raise OSError(errno.EFBIG, f"{path} is {size} bytes, more than the {req['max_bytes']} bytes allowed")
    with open(path, "rb") as f:
        data = f.read(req["max_bytes"] + 1)
    return {"ok": True, "path": path}, data


# -- main loop -------------------------------------------------------------------------------------------------------


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # init with a handler could be signalled from inside
    set_dumpable(False)
    channel = Channel(os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # a stray print of ours must never corrupt the protocol stream
    os.chdir(WORK)
    kernel = Kernel()
    kernel.start(channel)
    channel.send({"id": 0, "ok": True, "op": "hello", "protocol": PROTOCOL, "python": sys.version.split()[0]})
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
                    header, data = op_python(req, payload, channel, kernel)
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
                {"ok": False, "error": f"{type(exc).__name__}: {exc}", "errno": exc.errno or 0},
                b"",
            )
        except Exception as exc:
            header, data = (
                {"ok": False, "error": f"runner error: {type(exc).__name__}: {exc}", "errno": 0},
                b"",
            )
        header["id"] = req.get("id")
        channel.send(header, data)
    kill_all()


if __name__ == "__main__":
    main()
