"""The Docker engine as the sandbox sees it: one client, worker threads, ownership labels and the reaper.

The Docker SDK is synchronous, so every call goes through `call()`, which runs it on a small dedicated thread pool:
the event loop never blocks on the engine, and a burst of 32 container starts is not throttled by the loop's default
executor (5 workers on a 2-core machine).

Every container we create carries `agentkit.sandbox.owner=<host>/<pid>/<process start time>`. A process that dies
hard (SIGKILL, OOM) cannot clean up after itself, so the first sandbox started by any later process runs the reaper:
it removes containers whose owner process no longer exists (the start time guards against a recycled pid). Containers
of this process are also tracked in memory and removed at interpreter exit, so Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from agentkit.sandbox.errors import FIX_ENGINE, SandboxUnavailable
from agentkit.sandbox.limits import RUNNER_CAPS

if TYPE_CHECKING:
    import docker

log = logging.getLogger("agentkit.sandbox")

LABEL = "agentkit.sandbox"
OWNER_LABEL = "agentkit.sandbox.owner"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

T = TypeVar("T")

_lock = threading.Lock()
_client: docker.DockerClient | None = None
_executor = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="agentkit-docker")
_live: set[str] = set()
_reaped = False


def _grantable_caps() -> list[str]:
    """RUNNER_CAPS less CAP_SYS_RESOURCE where this kernel's bounding set lacks it (some VMs drop it for every
    process, the engine's included): asking for it would make every container start fail."""
    try:
        with open("/proc/self/status") as f:
            bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return list(RUNNER_CAPS)
    local = (os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST).startswith("unix://")
    return [c for c in RUNNER_CAPS if c != "SYS_RESOURCE" or not local or bounding & (1 << 24)]


# Less SYS_RESOURCE also once an engine refused it (Sandbox._create_and_start).
runner_caps = _grantable_caps()


# -- the client ------------------------------------------------------------------------------------------------------


def client() -> docker.DockerClient:
    """The process-wide Docker client; raises `SandboxUnavailable` saying how to get an engine that answers."""
    global _client
    with _lock:
        if _client is not None:
            return _client
        try:
            import docker
            import docker.errors
        except ImportError as exc:
            raise SandboxUnavailable(
                "the Docker SDK for Python is not installed", fix="pip install docker"
            ) from exc
        try:
            c = docker.from_env(max_pool_size=32, timeout=120)
            c.ping()
        except docker.errors.DockerException as exc:
            raise _unavailable(exc) from exc
        _client = c
        return c


def _unavailable(exc: Exception) -> SandboxUnavailable:
    text = str(exc)
    host = os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_HOST)
    if "Permission denied" in text or "PermissionError" in text:
        return SandboxUnavailable(
            f"no permission to use the Docker engine at {host}",
            fix="sudo usermod -aG docker $USER (then log in again), or run as root",
        )
    if "No such file" in text or "Connection refused" in text or "FileNotFoundError" in text:
        return SandboxUnavailable(f"no Docker engine answers at {host}", fix=FIX_ENGINE)
    return SandboxUnavailable(f"the Docker engine at {host} failed: {text}", fix=FIX_ENGINE)


async def call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking Docker SDK call on the engine thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))


async def call_to_completion(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Like `call`, but a cancellation waits for the call to finish before it propagates.

    For calls whose result must not be lost: a container created while its creator is cancelled would otherwise run
    with nobody knowing its id, and a removal dropped from the thread pool's queue would never happen.
    """
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(_executor, functools.partial(fn, *args, **kwargs))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        while not fut.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(fut)
        raise


# -- where the engine listens (the attach stream is spoken directly, without the SDK) --------------------------------


@dataclass(frozen=True)
class EngineAddress:
    """A Unix socket path or a TCP host and port of the engine's API."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def from_env(cls) -> EngineAddress:
        url = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        parsed = urlparse(url)
        if parsed.scheme == "unix":
            return cls(unix_path=parsed.path)
        if parsed.scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"):
            return cls(host=parsed.hostname or "localhost", port=parsed.port or 2375)
        raise SandboxUnavailable(
            f"DOCKER_HOST={url} is not supported by the sandbox (it needs a unix:// socket or plain tcp://)",
            fix="unset DOCKER_HOST to use /var/run/docker.sock",
        )

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        limit = 1 << 20
        if self.unix_path is not None:
            return await asyncio.open_unix_connection(self.unix_path, limit=limit)
        return await asyncio.open_connection(self.host, self.port, limit=limit)


# -- ownership, tracking and the reaper ------------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/pid/stat), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_id(pid: int | None = None) -> str:
    """`host/pid/start-time` of a process: unique even when pids are recycled."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_time(pid)}"


def owner_alive(owner: str) -> bool | None:
    """True or False for an owner on this host; None when it lives on another host (we cannot tell)."""
    try:
        host, pid, started = owner.rsplit("/", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return None
    return pid.isdigit() and _start_time(int(pid)) == started


def labels() -> dict[str, str]:
    return {LABEL: "1", OWNER_LABEL: owner_id()}


def track(container_id: str) -> None:
    _live.add(container_id)


def untrack(container_id: str) -> None:
    _live.discard(container_id)


def remove_container(container_id: str) -> None:
    """Force-remove a container (blocking); a container that is already gone is fine."""
    import docker.errors

    try:
        client().api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc) and "No such container" not in str(exc):
            raise
    finally:
        untrack(container_id)


def list_sandboxes() -> list[dict[str, Any]]:
    """Every sandbox container on the engine (running or not) as `{id, name, status, owner, alive}`."""
    out = []
    for c in client().api.containers(all=True, filters={"label": LABEL}):
        owner = c.get("Labels", {}).get(OWNER_LABEL, "")
        out.append(
            {
                "id": c["Id"],
                "status": c.get("State", "?"),
                "owner": owner,
                "alive": owner_alive(owner),
                "image": c.get("Image", ""),
            }
        )
    return out


def reap_orphans(*, everything: bool = False) -> list[str]:
    """Remove sandbox containers whose owner process is dead (or all of them but ours, with `everything`)."""
    removed = []
    for c in list_sandboxes():
        if c["id"] in _live:
            continue
        if everything or c["alive"] is False:
            remove_container(c["id"])
            removed.append(c["id"])
    if removed:
        log.info("reaped %d orphaned sandbox container(s)", len(removed))
    return removed


def reap_once() -> None:
    """Run the reaper the first time this process starts a sandbox."""
    global _reaped
    with _lock:
        if _reaped:
            return
        _reaped = True
    reap_orphans()


@atexit.register
def _remove_live_containers() -> None:
    """Last line of defence at interpreter exit (Ctrl-C, an un-awaited pool): remove what we still own."""
    for cid in list(_live):
        with contextlib.suppress(Exception):
            remove_container(cid)
