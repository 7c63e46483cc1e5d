"""Docker sandbox for model-written code: hardened containers, a warm pool, millisecond executions.

    from tools.sandbox import Sandbox, SandboxPool, SandboxLimits, python_tool

    async with Sandbox(limits=SandboxLimits(timeout=10)) as sb:
        result = await sb.run_python("print(6 * 7)")

Importing this package is light: the Docker SDK is imported on the first sandbox start. The image is built once with
`agentkit sandbox build` (or `python -m tools.sandbox build`); see docs/sandbox.md.
"""

from tools.sandbox.engine import reap_orphans
from tools.sandbox.errors import SandboxDied, SandboxError, SandboxProtocolError, SandboxUnavailable
from tools.sandbox.image import ensure_image, image_tag
from tools.sandbox.limits import SandboxLimits
from tools.sandbox.pool import SandboxPool
from tools.sandbox.sandbox import ExecResult, Sandbox
from tools.sandbox.tool import python_tool, render, sandbox_tools, shell_tool

__all__ = [
    "ExecResult",
    "Sandbox",
    "SandboxDied",
    "SandboxError",
    "SandboxLimits",
    "SandboxPool",
    "SandboxProtocolError",
    "SandboxUnavailable",
    "ensure_image",
    "image_tag",
    "python_tool",
    "reap_orphans",
    "render",
    "sandbox_tools",
    "shell_tool",
]
