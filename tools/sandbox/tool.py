"""Agent tools over the sandbox: `python` (a notebook-like interpreter) and `shell` (bash).

Each agent run gets its own sandbox: acquired from the pool on the run's first call, kept in the run's
`RunContext.resources`, and released (destroyed) by a cleanup when the run ends, however it ends. The python and
shell tools built by `sandbox_tools()` share that sandbox, so a file written by one is seen by the other.

Results are rendered for the model: stdout, stderr, the exception, the exit code, and what was cut or killed, so it
can react. A failed execution (non-zero exit, exception, timeout) comes back as an error result.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agentkit.console import safe_text
from agentkit.errors import ToolError
from agentkit.sandbox.errors import SandboxDied, SandboxUnavailable
from agentkit.sandbox.image import BUILTIN, ImageSpec
from agentkit.sandbox.limits import SandboxLimits, parse_size
from agentkit.sandbox.pool import SandboxPool
from agentkit.sandbox.sandbox import ExecResult, Sandbox
from agentkit.tools import Tool, current_run

START_ALLOWANCE = 60.0  # seconds a cold start may add to a call's tool timeout


@dataclass
class _RunSandbox:
    """The sandbox of one agent run (created on first use, replaced if it died)."""

    pool: SandboxPool
    sandbox: Sandbox | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> Sandbox:
        async with self.lock:
            if self.sandbox is not None and not self.sandbox.alive:
                await self.pool.release(self.sandbox)
                self.sandbox = None
            if self.sandbox is None:
                self.sandbox = await self.pool.acquire()
            return self.sandbox

    async def release(self) -> None:
        async with self.lock:
            if self.sandbox is not None:
                sb, self.sandbox = self.sandbox, None
                await self.pool.release(sb)


async def run_sandbox(pool: SandboxPool) -> Sandbox:
    """The sandbox of the current agent run (see `agentkit.tools.current_run`), acquired on first use."""
    ctx = current_run()
    key = f"agentkit.sandbox/{id(pool)}"
    slot = ctx.resources.get(key)
    if slot is None:
        slot = ctx.resources[key] = _RunSandbox(pool)
        ctx.add_cleanup(slot.release)
    return await slot.get()


def render(result: ExecResult, *, limits: SandboxLimits) -> str:
    """An execution as text for the model: output, then one bracketed line per thing that went wrong or was cut."""
    parts = []
    if result.stdout:
        parts.append(result.stdout if not result.stderr else f"[stdout]\n{result.stdout}")
    if result.stderr:
        parts.append(f"[stderr]\n{result.stderr}")
    notes = []
    if result.timed_out:
        notes.append(f"timed out after {result.duration:.0f} s and was killed")
    if result.output_limited:
        notes.append(f"stopped: it wrote more than {parse_size(limits.kill_output)} bytes of output")
    if result.exc_type:
        notes.append(f"{result.exc_type}: {result.exc_message}" if result.exc_message else result.exc_type)
    if result.exit_code != 0 and not result.timed_out:
        notes.append(f"exit code {result.exit_code}")
    if result.truncated:
        notes.append(
            f"output truncated to the first and last part of {result.stdout_bytes} bytes of stdout "
            f"and {result.stderr_bytes} bytes of stderr"
        )
    if result.state_reset:
        notes.append(
            "the Python interpreter was restarted: variables and imports from earlier calls are gone"
        )
    text = "\n".join(p.rstrip("\n") for p in parts)
    if notes:
        text += ("\n" if text else "") + "\n".join(f"[{n}]" for n in notes)
    return (
        safe_text(text) or "(no output)"
    )  # escape sequences shown, never interpreted, wherever it is printed


def _make(kind: str, pool: SandboxPool, name: str) -> Tool:
    arg = "code" if kind == "python" else "command"
    description = f"{DESCRIPTIONS[kind]} {_packages_text(pool, kind)}{_limits_text(pool.limits)}."

    async def execute(**arguments: str) -> str:
        try:
            sb = await run_sandbox(pool)
            if kind == "python":
                result = await sb.run_python(arguments[arg])
            else:
                result = await sb.run_shell(arguments[arg])
        except SandboxDied as exc:
            raise ToolError(
                f"The sandbox died: {exc}. Its files and Python variables are lost; the next call gets a fresh sandbox."
            ) from exc
        except SandboxUnavailable as exc:
            raise ToolError(f"The code sandbox is unavailable on this machine: {exc}") from exc
        text = render(result, limits=pool.limits)
        if not result.ok:
            raise ToolError(text)
        return text

    what = "Python code" if kind == "python" else "a bash command"
    schema = {
        "type": "object",
        "properties": {arg: {"type": "string", "description": f"{what} to run"}},
        "required": [arg],
        "additionalProperties": False,
    }
    timeout = pool.limits.timeout + pool.limits.grace + START_ALLOWANCE
    return Tool.from_schema(name, description, schema, execute, timeout=timeout)


_default_pool: SandboxPool | None = None


def _pool(pool: SandboxPool | None, limits: SandboxLimits | None) -> SandboxPool:
    """The given pool; else one without warm sandboxes (each run starts its own, ~0.2 s). With default limits that pool
    is shared process-wide, so `python_tool()` and `shell_tool()` built separately still share a run's sandbox."""
    global _default_pool
    if pool is not None:
        return pool
    if limits is not None:
        return SandboxPool(size=0, limits=limits)
    if _default_pool is None:
        _default_pool = SandboxPool(size=0)
    return _default_pool


def _packages_text(pool: SandboxPool, kind: str) -> str:
    """What the model may import: the image spec's Python packages, else the standard library only."""
    if kind != "python":
        return ""
    spec = pool.image if isinstance(pool.image, ImageSpec) else BUILTIN.get(str(pool.image or "default"))
    if spec is None or not spec.python:
        return "Standard library only (no pip). " if spec is not None else ""
    return f"Installed beyond the standard library: {', '.join(spec.python)} (no pip). "


def _limits_text(limits: SandboxLimits) -> str:
    return (
        f"No network. {limits.timeout:g} s per call, {limits.memory} memory, {limits.work_size} in /work "
        "(the working directory; the rest of the file system is read-only except /tmp)"
    )


DESCRIPTIONS = {
    "python": "Run Python 3 code in an isolated sandbox, like a notebook cell: variables, functions and imports "
    "persist between calls in this conversation, and the value of a final expression is printed. Use print() to "
    "show results.",
    "shell": "Run a bash command in an isolated Debian sandbox and get its stdout, stderr and exit code. Background "
    "jobs end when the command returns.",
}


def python_tool(
    pool: SandboxPool | None = None, *, limits: SandboxLimits | None = None, name: str = "python"
) -> Tool:
    """A `python` tool: runs code in this agent run's sandbox; variables and imports persist between calls."""
    return _make("python", _pool(pool, limits), name)


def shell_tool(
    pool: SandboxPool | None = None, *, limits: SandboxLimits | None = None, name: str = "shell"
) -> Tool:
    """A `shell` tool: runs `bash -c` in this agent run's sandbox (the same one as its python tool for one pool)."""
    return _make("shell", _pool(pool, limits), name)


def sandbox_tools(pool: SandboxPool | None = None, *, limits: SandboxLimits | None = None) -> list[Tool]:
    """The python and shell tools sharing one sandbox per agent run."""
    pool = _pool(pool, limits)
    return [python_tool(pool), shell_tool(pool)]
