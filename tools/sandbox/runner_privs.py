"""Privileges of the runner and of user code: two uids, four capabilities, OOM scores and a seccomp filter of our own.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.

The container starts as root with every capability dropped but CAP_SETUID, CAP_SETGID, CAP_KILL and CAP_SYS_RESOURCE,
and `no-new-privileges`. Before it reads a request the runner (`drop_to_runner`):

- sets its own `oom_score_adj` to -1000: the OOM killer never picks it;
- becomes uid R (the runner's uid of this sandbox, drawn per sandbox by the host; real and saved uid) keeping only
  those capabilities, with U, the code's uid, as its effective uid: every file it touches in /work it touches with
  the code's rights, no more, while signals and /proc accesses of the code's processes, judged against the runner's
  real and saved uid, are refused;
- installs the seccomp filter below, on top of the engine's default profile (filters stack; both apply to the runner
  and to everything it starts).

A child that runs user code (`become_user`) writes its own `oom_score_adj` of 1000 while it still holds
CAP_SYS_RESOURCE, which makes 1000 its floor (an unprivileged process can lower it only down to the last value a
privileged one set), then becomes uid U with no capability left. So user code can neither signal nor read the runner
(another uid, no CAP_KILL, non-dumpable), nor raise its own OOM priority above the runner's, and since every sandbox
has its own U, kernel limits counted per uid (inotify instances, pipe buffers, ...) are not shared with neighbours.
"""

import ctypes
import os

CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SYS_RESOURCE = 5, 6, 7, 24
RUNNER_CAPS = (1 << CAP_KILL) | (1 << CAP_SETGID) | (1 << CAP_SETUID) | (1 << CAP_SYS_RESOURCE)
PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 8, 38, 22, 2

_libc = ctypes.CDLL(None, use_errno=True)
uids = {"runner": os.getuid(), "code": os.getuid(), "oom_protected": False}


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _capset(bits):
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)(
        bits, bits, 0, 0, 0, 0
    )  # effective, permitted, inheritable (low, then high word)
    _check(_libc.capset(header, data), "capset")


def _permitted():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return 0


def _oom_score_adj(value):
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(value))


def drop_to_runner():
    """In the runner, first thing: see the module's docstring. Without AGENTKIT_UIDS (an older host, or a root-less
    engine), nothing changes and the runner and the code share the container's uid."""
    spec = os.environ.pop("AGENTKIT_UIDS", "")
    if not spec or os.getuid() != 0:
        install_seccomp()
        return
    runner, code = (int(x) for x in spec.split(":"))
    try:
        _oom_score_adj(-1000)
        uids["oom_protected"] = True
    except (
        OSError
    ):  # the engine could not grant CAP_SYS_RESOURCE (some hosts drop it from every bounding set)
        uids["oom_protected"] = False
    _check(_libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keepcaps")
    os.setgroups([])
    # Real and saved uid R, effective (and so file-system) uid U: files in /work are touched with the code's rights,
    # while a signal or a /proc access from the code is judged against R (real and saved) and refused.
    os.setresgid(runner, code, runner)
    os.setresuid(runner, code, runner)
    _capset(RUNNER_CAPS & _permitted())
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("the runner could not leave uid 0")
    uids.update(runner=runner, code=code)
    install_seccomp()


def become_user():
    """In a child about to run user code: the code's uid, the OOM killer's first choice for good, no capability."""
    code = uids["code"]
    if code != os.getuid():
        os.setgroups([])
        os.setresgid(code, code, code)
        os.setresuid(code, code, code)  # from uid R, not 0: the capabilities stay until _capset(0) below
    _libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: /proc/self is ours to write (a uid change clears the flag)
    try:
        _oom_score_adj(
            1000
        )  # with CAP_SYS_RESOURCE still held this is also the floor the code cannot go below
    except OSError:
        pass
    _capset(0)


# -- the seccomp filter ----------------------------------------------------------------------------------------------

EPERM, EAFNOSUPPORT = 1, 97
AUDIT_ARCH_X86_64 = 0xC000003E
# Kernel surfaces code in a sandbox has no need of, beyond what the engine's default profile blocks (x86_64 numbers).
BLOCKED = {
    "io_uring": (425, 426, 427),  # io_uring_setup, _enter, _register
    "sysv_ipc": (
        29,
        30,
        31,
        64,
        65,
        66,
        67,
        68,
        69,
        70,
        71,
        220,
    ),  # shm*, sem*, msg*: memory no process holds
    "userfaultfd": (323,),
    "ptrace": (101, 310, 311),  # ptrace, process_vm_readv, process_vm_writev
    "perf_bpf": (298, 321),  # perf_event_open, bpf
    "keys": (248, 249, 250),  # add_key, request_key, keyctl
    "namespaces": (272, 308),  # unshare, setns
    "handles": (303, 304),  # name_to_handle_at, open_by_handle_at
    "memfd": (
        319,
    ),  # memfd_create: memory that no size limit caps and that no process's RSS shows the OOM killer
}
SOCKET_CALLS = (41, 53)  # socket, socketpair
ALLOWED_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK; AF_VSOCK, AF_ALG, ... are refused


def _program():
    """The classic-BPF program, as (code, jt, jf, k) tuples."""
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, errno_ = 0x7FFF0000, 0x00050000
    blocked = sorted({nr for group in BLOCKED.values() for nr in group})
    prog = [(ld_w_abs, 0, 0, 4), (jeq, 1, 0, AUDIT_ARCH_X86_64), (ret, 0, 0, errno_ | EPERM)]
    prog += [(ld_w_abs, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, errno_ | EPERM)]  # x32 numbers
    for nr in blocked:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, errno_ | EPERM)]
    prog += [(jeq, 1, 0, SOCKET_CALLS[0]), (jeq, 0, len(ALLOWED_FAMILIES) + 2, SOCKET_CALLS[1])]
    prog += [(ld_w_abs, 0, 0, 16)]  # args[0], low word
    for i, family in enumerate(ALLOWED_FAMILIES):
        prog += [(jeq, len(ALLOWED_FAMILIES) - i, 0, family)]
    prog += [(ret, 0, 0, errno_ | EAFNOSUPPORT), (ret, 0, 0, allow)]
    return prog


def install_seccomp():
    """Stack our filter on the engine's (needs no_new_privs, which the container has). x86_64 only: elsewhere the
    engine's default profile is all there is, and `seccomp_installed()` says so."""
    global _installed
    if os.uname().machine != "x86_64":
        return
    prog = _program()

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*ins) for ins in prog])
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    fprog = Prog(len(prog), filters)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
    _installed = True


_installed = False


def seccomp_installed():
    return _installed
