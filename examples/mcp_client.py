"""An agent whose tools come from an MCP server (here a subprocess speaking stdio) next to a local function tool.

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/mcp_client.py
A remote server instead:  MCPServerHTTP("https://host/mcp", headers={"Authorization": "Bearer ..."})
"""

import asyncio
import os
import sys
from pathlib import Path

from agentkit import Agent, tool
from agentkit.backends import RemoteBackend
from agentkit.mcp import MCPServerStdio


@tool
def packing_list(weather: str) -> str:
    """What to pack for a given weather report."""
    return "umbrella" if "rain" in weather else "sunglasses"


async def main() -> None:
    weather = MCPServerStdio(sys.executable, [str(Path(__file__).with_name("mcp_weather_server.py"))])
    backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
    agent = Agent(backend, [weather, packing_list])  # the server starts with the run and stops after it
    result = await agent.run("What is tomorrow's weather in Lisbon, and what should I pack?")
    print("answer:", result.output)
    print(f"{result.status}: {result.tool_calls} tool calls over {result.turns} turns")


asyncio.run(main())
