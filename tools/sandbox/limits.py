"""Resource and security limits of a sandbox container, on by default and all configurable.

The defaults assume hostile code: no network, a memory limit with swap equal to memory (no swap escape), a pids limit
(fork bombs), a CPU quota, a read-only root with small size-limited tmpfs mounts for the work dir and /tmp, every
capability dropped, `no-new-privileges`, an unprivileged user, ulimits on open files and file size, a wall-clock
timeout per execution and a cap on captured output.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}

WORK_DIR = "/work"
NOBODY = "65534:65534"
UID_BASE = 1_000_000
RUNNER_CAPS = [
    "SETUID",
    "SETGID",
    "KILL",
    "SYS_RESOURCE",
]  # the runner keeps these; user code has none (runner_privs)
INODE_BYTES = 1024  # kernel memory an empty file on tmpfs costs (inode + dentry), for the memory budget
RUNNER_HEADROOM = 64 * 1024 * 1024  # memory kept free of tmpfs for the runner and the code's processes


def parse_size(value: int | str) -> int:
    """Bytes from `123`, `"64m"`, `"1g"`, `"512MiB"` (binary units, as Docker reads them)."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ValueError(f"not a size: {value!r} (use bytes or a number with k, m or g, e.g. '256m')")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class SandboxLimits:
    """Limits applied to one sandbox container and to each execution inside it."""

    memory: int | str = "512m"
    """Memory limit; swap is set equal to it so the container cannot escape into swap."""
    pids: int = 128
    """Maximum number of processes and threads in the container (contains fork bombs)."""
    cpus: float = 1.0
    """CPU quota in cores."""
    work_size: int | str = "128m"
    """Size of the tmpfs mounted on the work dir (/work, the cwd and $HOME)."""
    tmp_size: int | str = "64m"
    """Size of the tmpfs mounted on /tmp."""
    shm_size: int | str = "16m"
    """Size of /dev/shm."""
    work_inodes: int = 32768
    """Files and directories /work may hold (empty files cost kernel memory that no size limit counts)."""
    tmp_inodes: int = 8192
    """Files and directories /tmp may hold (and /dev/shm, a tenth of it)."""
    network: str = "none"
    """Docker network mode; "none" means no interface but loopback."""
    read_only_root: bool = True
    user: str | None = None
    """uid:gid the code runs as; None draws a fresh uid per sandbox. The runner runs as the uid just below it."""
    runtime: str | None = None
    """OCI runtime of the container: None for the engine's default (runc), "runsc" for gVisor where installed."""
    nofile: int = 1024
    """RLIMIT_NOFILE (open files)."""
    fsize: int | str = "128m"
    """RLIMIT_FSIZE (largest file a process may write)."""
    timeout: float = 30.0
    """Wall-clock seconds per execution; then everything it started is killed."""
    max_output: int | str = "64k"
    """Bytes of stdout and of stderr kept per execution (head and tail, with a truncation marker between)."""
    kill_output: int | str = "8m"
    """Bytes of output after which an execution is stopped (an endless print loop ends in well under a second)."""
    max_file: int | str = "64m"
    """Largest file `get_file` returns."""
    grace: float = 5.0
    """Extra seconds the host waits for the runner after `timeout` before it kills the whole container."""

    def replace(self, **changes: Any) -> SandboxLimits:
        return dataclasses.replace(self, **changes)

    def budget_check(self) -> None:
        """Memory the code can hold outside any process (tmpfs files and their inodes) must leave room in the memory
        limit for the runner: when the OOM killer has killed every process of the code, the runner must fit."""
        outside = (
            parse_size(self.work_size)
            + parse_size(self.tmp_size)
            + parse_size(self.shm_size)
            + (self.work_inodes + self.tmp_inodes + self.tmp_inodes // 10) * INODE_BYTES
        )
        if outside + RUNNER_HEADROOM > parse_size(self.memory):
            raise ValueError(
                f"work_size + tmp_size + shm_size and their inodes ({outside >> 20} MiB) must stay "
                f"{RUNNER_HEADROOM >> 20} MiB below memory ({parse_size(self.memory) >> 20} MiB): "
                "raise memory or lower them"
            )

    def host_config(self, code_uid: int = 65534, caps: list[str] | None = None) -> dict[str, Any]:
        """Keyword arguments for the SDK's `create_host_config` that enforce these limits; `code_uid` owns /work, and
        the runner may keep `caps` (by default RUNNER_CAPS; user code never has any)."""
        self.budget_check()
        memory = parse_size(self.memory)
        tmpfs = "rw,nosuid,nodev,noexec"
        config: dict[str, Any] = {
            "network_mode": self.network,
            "mem_limit": memory,
            "memswap_limit": memory,
            "pids_limit": self.pids,
            "nano_cpus": int(self.cpus * 1e9),
            "read_only": self.read_only_root,
            "tmpfs": {
                WORK_DIR: f"rw,exec,nosuid,nodev,size={parse_size(self.work_size)},nr_inodes={self.work_inodes},"
                f"mode=0700,uid={code_uid},gid={code_uid}",
                "/tmp": f"{tmpfs},size={parse_size(self.tmp_size)},nr_inodes={self.tmp_inodes},mode=1777",
                "/dev/shm": f"{tmpfs},size={parse_size(self.shm_size)},nr_inodes={self.tmp_inodes // 10},mode=1777",
            },
            "cap_drop": ["ALL"],
            "cap_add": list(RUNNER_CAPS if caps is None else caps),
            "security_opt": ["no-new-privileges"],
            "log_config": {"type": "none", "config": {}},
            "ulimits": [
                {"name": "nofile", "soft": self.nofile, "hard": self.nofile},
                {"name": "fsize", "soft": parse_size(self.fsize), "hard": parse_size(self.fsize)},
                {"name": "core", "soft": 0, "hard": 0},
            ],
        }
        if self.runtime:
            config["runtime"] = self.runtime
        return config

    def uids(self) -> tuple[int, int]:
        """(runner uid, code uid) for a new sandbox: drawn from a range of 2**28 pairs unless `user` is set."""
        if self.user is not None:
            code = int(self.user.split(":")[0])
            return code - 1, code
        runner = UID_BASE + 2 * secrets.randbelow(1 << 28)
        return runner, runner + 1

    def runner_options(self, timeout: float | None) -> dict[str, Any]:
        """Per-execution limits the runner enforces inside the container."""
        return {
            "timeout": float(self.timeout if timeout is None else timeout),
            "max_output": parse_size(self.max_output),
            "kill_output": parse_size(self.kill_output),
        }
