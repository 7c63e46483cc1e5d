"""Output of an execution: both pipes read until the code finishes, its timeout passes or it writes too much; the
head and tail of each kept within the cap; the answer header that reports all of it.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.
"""

import os
import selectors
import time

from runner_procs import reap
from runner_wire import CHUNK, EXIT_KILLED


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


def collect(out_fd, err_fd, done_fds, deadline, opts, settled=None, exits=None):
    """Read both pipes until one of `done_fds` is readable, the deadline passes or output exceeds the kill limit.

    `exits` maps a done fd to a check that it really is done (runner_procs.ExitWatch.exited). With `settled`, the
    last of `done_fds` readable is not enough: `settled()` must also hold (the kernel's answer
    counts once its process is idle again; output it writes meanwhile is still read). Returns (captures, why) with
    why in {"done", "timeout", "output"}; the pipes are closed on return.
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
    waiting = False
    while why is None:
        left = deadline - time.monotonic()
        if left <= 0:
            why = "timeout"
            break
        for key, _ in sel.select(min(left, 0.0002 if waiting else 0.25)):
            fd = key.fd
            if fd in done_fds:
                if exits and fd in exits and not exits[fd]():
                    continue
                if settled is None or fd != done_fds[-1]:
                    why = "done"
                elif not waiting:
                    waiting = True
                    sel.unregister(fd)
            elif fd in open_fds:
                if not _drain(fd, caps[fd], CHUNK * 4):
                    sel.unregister(fd)
                    open_fds.discard(fd)
        if why is None and waiting and settled():
            why = "done"
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
