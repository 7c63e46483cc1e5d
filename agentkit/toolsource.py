"""Tools known only at run time: a source (an MCP server) lists them when a run starts, and again when it says its
list changed.

`Agent(tools=[...])` takes sources next to `@tool` functions. The loop `acquire`s every source when a run starts and
`release`s it when the run ends, however it ends; a source counts its users, so one shared by an `async with` (or by
concurrent runs) stays up until its last user lets go. The core knows only this protocol, never MCP itself.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agentkit.tools import Tool


@runtime_checkable
class ToolSource(Protocol):
    """Something that lends tools to a run. `tools_changed` is set by the source when its list changed since the
    last `list_tools` (the loop then lists again before the next model request)."""

    name: str
    tools_changed: bool

    async def acquire(self) -> None: ...

    async def release(self) -> None: ...

    async def list_tools(self) -> list[Tool]: ...


def is_tool_source(obj: object) -> bool:
    """Whether `obj` lends tools at run time (rather than being a tool or a function)."""
    return not isinstance(obj, Tool) and isinstance(obj, ToolSource)
