"""MCP in agentkit: servers' tools as agentkit tools (`MCPServerStdio`, `MCPServerHTTP`); `agentkit mcp serve`
exposes agentkit's own tools (its wiring is in `agentkit.app`). Needs the `mcp` extra: pip install 'agentkit[mcp]'."""

from agentkit.mcp.client import MCPServer, MCPServerHTTP, MCPServerStdio, render_call_result

__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio", "render_call_result"]
