"""Resource and security limits of a sandbox container, on by default and all configurable.

The defaults assume hostile code: no network, a memory limit with swap equal to memory (no swap escape), a pids limit
(fork bombs), a CPU quota, a read-only root with small size-limited tmpfs mounts for the work dir and /tmp, every
capability dropped, `no-new-privileges`, an unprivileged user, ulimits on open files and file size, a wall-clock
timeout per execution and a cap on captured output.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}

WORK_DIR = "/work"
NOBODY = "65534:65534"


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
    network: str = "none"
    """Docker network mode; "none" means no interface but loopback."""
    read_only_root: bool = True
    user: str = NOBODY
    """uid:gid the runner and all code run as (nobody)."""
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

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's `create_host_config` that enforce these limits (the user is separate)."""
        memory = parse_size(self.memory)
        return {
            "network_mode": self.network,
            "mem_limit": memory,
            "memswap_limit": memory,
            "pids_limit": self.pids,
            "nano_cpus": int(self.cpus * 1e9),
            "read_only": self.read_only_root,
            "tmpfs": {
                WORK_DIR: f"rw,exec,nosuid,nodev,size={parse_size(self.work_size)},mode=0700,"
                f"uid={self.user.split(':')[0]},gid={self.user.split(':')[-1]}",
                "/tmp": f"rw,noexec,nosuid,nodev,size={parse_size(self.tmp_size)},mode=1777",
            },
            "shm_size": parse_size(self.shm_size),
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "ulimits": [
                {"name": "nofile", "soft": self.nofile, "hard": self.nofile},
                {"name": "fsize", "soft": parse_size(self.fsize), "hard": parse_size(self.fsize)},
                {"name": "core", "soft": 0, "hard": 0},
            ],
        }

    def runner_options(self, timeout: float | None) -> dict[str, Any]:
        """Per-execution limits the runner enforces inside the container."""
        return {
            "timeout": float(self.timeout if timeout is None else timeout),
            "max_output": parse_size(self.max_output),
            "kill_output": parse_size(self.kill_output),
        }
