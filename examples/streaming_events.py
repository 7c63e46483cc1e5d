"""Stream a run's events as they happen: reasoning, tool calls, tool results, the answer.

    DEEPSEEK_API_KEY=sk-... python examples/streaming_events.py
"""

import asyncio
import os

from agentkit import Agent, AssistantTurn, Final, ReasoningDelta, TextDelta, ToolResult, tool
from agentkit.backends import RemoteBackend


@tool
async def lookup_population(city: str) -> dict:
    """Population of a city, from a small built-in table."""
    table = {"paris": 2_102_650, "tokyo": 13_960_000, "lagos": 15_388_000}
    return {"city": city, "population": table.get(city.lower())}


async def main() -> None:
    async with RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL")) as backend:
        agent = Agent(backend, [lookup_population], thinking=True)
        async for event in agent.stream("Which is bigger, Paris or Tokyo?"):
            match event:
                case ReasoningDelta(text=text):
                    print(f"\033[2m{text}\033[0m", end="", flush=True)
                case TextDelta(text=text):
                    print(text, end="", flush=True)
                case AssistantTurn(message=message):
                    print()
                    for call in message.tool_calls:
                        print(f"-> {call.name}({call.arguments})")
                case ToolResult(call=call, content=content):
                    print(f"<- {call.name}: {content}")
                case Final(result=result):
                    print(f"\n[{result.status}] {result.turns} turns, {result.usage.reasoning_tokens} reasoning tokens")


asyncio.run(main())
