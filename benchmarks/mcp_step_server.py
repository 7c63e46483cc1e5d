"""The MCP server of bench_loop.py's MCP row: one tool, `mcp_step`, the same work as the local `step` tool."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bench", log_level="ERROR")


@server.tool()
def mcp_step(n: int) -> int:
    """Advance one step."""
    return n + 1


if __name__ == "__main__":
    server.run()
