"""Process control for the runner: reaping (as init it inherits orphans), exit statuses, killing a process group or
everything but itself, forking past an exhausted pids limit, and the setup of a child that runs user code.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.
"""

import ctypes
import os
import signal
import time

from runner_privs import become_user

statuses: dict[int, int] = {}  # pid -> wait status of children reaped by reap()


def reap():
    """Collect every exited child (as init we also inherit orphans); remember their statuses."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status


def wait_status(pid):
    """Exit status of our child `pid` as a shell would report it (128+N for a signal); blocks until it exits."""
    while pid not in statuses:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            reap()
            break
        statuses[pid] = status
    status = statuses.pop(pid, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def exit_code_soon(pid, seconds):
    """The exit code of child `pid` if it exits within `seconds` (left for wait_status to collect), else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reap()
        if pid in statuses:
            status = statuses[pid]
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.002)
    return None


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


class ExitWatch:
    """A descriptor that becomes readable when child `pid` exits: its pidfd, or, where pidfd_open(2) is missing
    (gVisor), a self-pipe that SIGCHLD wakes, shared by all watches; `exited()` then says whether it was this child."""

    _wake = None

    def __init__(self, pid):
        self.pid = pid
        try:
            self.fd, self.own = os.pidfd_open(pid), True
        except OSError:
            self.fd, self.own = ExitWatch._wakeup(), False

    @classmethod
    def _wakeup(cls):
        if cls._wake is None:
            r, w = os.pipe()
            for fd in (r, w):
                os.set_blocking(fd, False)
            signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd gets the signal
            signal.set_wakeup_fd(w)
            cls._wake = r
        return cls._wake

    def exited(self):
        if self.own:
            return True
        try:
            while os.read(self.fd, 512):
                pass
        except BlockingIOError:
            pass
        reap()
        return self.pid in statuses

    def close(self):
        if self.own:
            os.close(self.fd)


def zombies_of(parent):
    """Pids of exited children of `parent` that it has not reaped yet."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z" and int(fields[1]) == parent:
            found.append(int(p))
    return found


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
    """SIGKILL every process in the container except init (us) and `spare`; freeze first so nothing can fork.
    Returns how many processes it had to kill."""
    spare = {1, os.getpid(), *spare}
    killed = 0
    for _ in range(100):
        victims = [
            int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in spare and _is_live(int(p))
        ]
        if not victims:
            reap()
            return killed
        killed += len(victims)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        reap()
        time.sleep(0.002)
    return killed


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
    """In a child about to run user code: the code's uid without capabilities, the OOM killer's first choice for good
    (runner_privs), and default signal handling."""
    become_user()  # also makes the child dumpable again, so its /proc/self files are its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
