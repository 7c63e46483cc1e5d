"""Approvals: tools marked `@tool(requires_approval=True)` run only once someone said yes.

Two ways to say it. `Agent(approve=callback)`: the loop asks `callback(call, tool)` (sync or async) before each such
call; True approves, False or a string (the reason) denies. Without a callback the run ends with
`status="pending_approval"` and `result.pending` (the calls waiting, none of the response's calls run), and the
application resumes later: `agent.run(history=result.messages, approvals={call_id: True | False | "reason"})`.
A denied call is not run; its result tells the model it was denied (and why), so the model can go on without it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agentkit.messages import ToolCall
from agentkit.tools import Tool, ToolOutput, Toolset

Decision = bool | str
ApprovalCallback = Callable[[ToolCall, Tool], Decision | Awaitable[Decision]]


def denied(call: ToolCall, reason: str | None) -> ToolOutput:
    why = f": {reason}" if reason else ""
    return ToolOutput(f"The call to '{call.name}' was denied by the user{why}. It did not run; do not retry it as it is.", True)


async def decide(
    calls: list[ToolCall],
    toolset: Toolset,
    approvals: Mapping[str, Decision] | None,
    callback: ApprovalCallback | None,
) -> tuple[dict[int, ToolOutput], list[ToolCall]]:
    """For one response's calls: the results of the denied ones (by index) and the calls still waiting."""
    refused: dict[int, ToolOutput] = {}
    waiting: list[ToolCall] = []
    for i, call in enumerate(calls):
        found = toolset.get(call.name)
        if found is None or not found.requires_approval:
            continue
        if approvals is not None and call.id in approvals:
            decision: Any = approvals[call.id]
        elif callback is not None:
            decision = callback(call, found)
            if inspect.isawaitable(decision):
                decision = await decision
        else:
            waiting.append(call)
            continue
        if decision is not True:
            refused[i] = denied(call, decision if isinstance(decision, str) else None)
    return refused, waiting
