"""Errors of the sandbox, all under `agentkit.errors.AgentkitError`.

Each message ends with what to do next: the exact command that installs, starts or builds the missing piece.
"""

from __future__ import annotations

from agentkit.errors import AgentkitError

FIX_ENGINE = "bash scripts/ensure-docker.sh && agentkit sandbox build"
FIX_IMAGE = "agentkit sandbox build"


class SandboxError(AgentkitError):
    """Base class of every sandbox error."""


class SandboxUnavailable(SandboxError):
    """The sandbox cannot start here: no Docker SDK, no engine, no permission on its socket, or no image."""

    def __init__(self, message: str, *, fix: str) -> None:
        super().__init__(f"{message}. Fix: {fix}")
        self.fix = fix


class SandboxDied(SandboxError):
    """The sandbox's container or its runner is gone; it cannot be used again (its state is lost)."""


class SandboxProtocolError(SandboxDied):
    """The runner answered something that is not the protocol; the sandbox is treated as dead."""
