"""A tiny MCP server built with the official SDK (used by examples/mcp_client.py). Run it alone with
`python examples/mcp_weather_server.py` (stdio) or `... --http 8765` (streamable HTTP at /mcp)."""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather", log_level="ERROR")


@server.tool()
def forecast(city: str) -> str:
    """Tomorrow's weather in a city."""
    return f"{city}: 21 °C, light wind"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
