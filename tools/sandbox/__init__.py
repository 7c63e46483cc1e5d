"""Docker sandbox for model-written code: hardened containers, a warm pool, millisecond executions.

    from agentkit.sandbox import Sandbox, SandboxPool, SandboxLimits, python_tool

    async with Sandbox(limits=SandboxLimits(timeout=10)) as sb:
        result = await sb.run_python("print(6 * 7)")

Importing this package is light: the Docker SDK is imported on the first sandbox start. The image is built once with
`agentkit sandbox build` (or `python -m agentkit.sandbox build`); see docs/sandbox.md.
"""

from agentkit.sandbox.engine import reap_orphans
from agentkit.sandbox.errors import SandboxDied, SandboxError, SandboxProtocolError, SandboxUnavailable
from agentkit.sandbox.image import DATA, ImageSpec, ensure_image, image_tag
from agentkit.sandbox.limits import SandboxLimits
from agentkit.sandbox.pool import SandboxPool
from agentkit.sandbox.sandbox import ExecResult, Sandbox
from agentkit.sandbox.tool import python_tool, render, sandbox_tools, shell_tool

__all__ = [
    "DATA",
    "ImageSpec",
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
