"""The agent tools: one sandbox per agent run (from the pool), rendered results, cleanup when the run ends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentkit.sandbox import (
    ExecResult,
    SandboxLimits,
    SandboxPool,
    engine,
    python_tool,
    render,
    sandbox_tools,
)
from agentkit.tools import RunContext, Tool, ToolOutput, reset_current_run, set_current_run


async def call(ctx: RunContext, tool: Tool, arguments: dict[str, Any] | str) -> ToolOutput:
    """Invoke a tool inside an agent run, as the loop does."""
    token = set_current_run(ctx)
    try:
        return await tool.invoke(arguments if isinstance(arguments, str) else json.dumps(arguments))
    finally:
        reset_current_run(token)


def run_containers(ctx: RunContext) -> list[str]:
    slots = [v for k, v in ctx.resources.items() if k.startswith("agentkit.sandbox/")]
    return [s.sandbox.container_id for s in slots if s.sandbox is not None]


async def test_each_run_gets_its_own_sandbox_and_state(
    limits: SandboxLimits, wait_removed: Callable[[list[str]], list[str]]
) -> None:
    async with SandboxPool(size=2, limits=limits) as pool:
        tool = python_tool(pool)
        assert tool.name == "python" and tool.parameters["required"] == ["code"]
        run1, run2 = RunContext(), RunContext()
        first = await call(run1, tool, '{"code": "x = 1\\nprint(\'set\')"}')  # raw JSON, as a model sends it
        assert first == ToolOutput("set")
        other = await call(run2, tool, {"code": "print(x)"})
        assert other.is_error and "NameError: name 'x' is not defined" in other.content
        same = await call(run1, tool, {"code": "x + 1"})
        assert same == ToolOutput("2")
        ids1, ids2 = run_containers(run1), run_containers(run2)
        assert len(ids1) == len(ids2) == 1 and ids1 != ids2
        assert pool.stats["warm_acquires"] == 2
        await run1.aclose()
        await run2.aclose()
        assert wait_removed(ids1 + ids2) == []


async def test_python_and_shell_share_the_run_sandbox(limits: SandboxLimits) -> None:
    python, shell = sandbox_tools(limits=limits)
    assert shell.name == "shell" and shell.parameters["required"] == ["command"]
    run = RunContext()
    try:
        await call(run, python, {"code": "open('note.txt', 'w').write('from python')"})
        assert (await call(run, shell, {"command": "cat note.txt"})).content == "from python"
        failed = await call(run, shell, {"command": "echo partial; echo bad >&2; exit 3"})
        assert failed.is_error and failed.content == "[stdout]\npartial\n[stderr]\nbad\n[exit code 3]"
    finally:
        await run.aclose()
    assert run_containers(run) == []  # released when the run ended


async def test_errors_timeouts_and_truncation_are_rendered_for_the_model(limits: SandboxLimits) -> None:
    tool = python_tool(limits=limits.replace(timeout=1))
    run = RunContext()
    try:
        exc = await call(run, tool, {"code": "print('before')\n{}['missing']"})
        assert exc.is_error
        assert exc.content.startswith("[stdout]\nbefore\n[stderr]\nTraceback")
        assert exc.content.endswith("KeyError: 'missing'\n[KeyError: 'missing']\n[exit code 1]")
        slow = await call(run, tool, {"code": "import time\ntime.sleep(30)"})
        assert slow.is_error and "[timed out after 1 s and was killed]" in slow.content
        assert "variables and imports from earlier calls are gone" in slow.content
        big = await call(run, tool, {"code": "print('y' * 300_000)"})
        assert (
            not big.is_error and "[output truncated to the first and last part of 300001 bytes" in big.content
        )
        quiet = await call(run, tool, {"code": "z = 1"})
        assert quiet == ToolOutput("(no output)")
        invalid = await call(run, tool, {"source": "print(1)"})
        assert invalid.is_error and "code" in invalid.content
    finally:
        await run.aclose()


async def test_a_dead_sandbox_is_reported_then_replaced(limits: SandboxLimits) -> None:
    tool = python_tool(limits=limits)
    run = RunContext()
    try:
        await call(run, tool, {"code": "x = 1"})
        (first,) = run_containers(run)
        await engine.call(engine.client().api.kill, first)
        died = await call(run, tool, {"code": "print(x)"})
        assert (
            died.is_error and died.content.startswith("The sandbox died:") and "fresh sandbox" in died.content
        )
        again = await call(run, tool, {"code": "print('new', 'x' in globals())"})
        assert again == ToolOutput("new False")
        assert run_containers(run) != [first]
    finally:
        await run.aclose()


def test_render_marks_every_problem() -> None:
    result = ExecResult(
        stdout="out\n",
        stderr="err\n",
        exit_code=137,
        duration=2.0,
        timed_out=False,
        truncated=True,
        output_limited=True,
        stdout_bytes=9_000_000,
        stderr_bytes=4,
        state_reset=True,
    )
    text = render(result, limits=SandboxLimits())
    assert text.splitlines() == [
        "[stdout]",
        "out",
        "[stderr]",
        "err",
        "[stopped: it wrote more than 8388608 bytes of output]",
        "[exit code 137]",
        "[output truncated to the first and last part of 9000000 bytes of stdout and 4 bytes of stderr]",
        "[the Python interpreter was restarted: variables and imports from earlier calls are gone]",
    ]
