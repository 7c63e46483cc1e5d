"""DeepSeek thinking mode with tools over two user turns.

Thinking mode has a wire rule: the reasoning of the current turn's tool sub-turns must be sent back (V3.2), or the
reasoning of every tool-using turn (V4); the API answers HTTP 400 otherwise. agentkit applies the rule for the model
id; you just keep passing the transcript.

    DEEPSEEK_API_KEY=sk-... python examples/deepseek_thinking_tools.py
"""

import asyncio
import os

from agentkit import Agent, UserMessage, tool
from agentkit.backends import RemoteBackend
from agentkit.console import EventPrinter
from agentkit.events import Final

RATES = {"EUR": 1.0, "USD": 1.08, "JPY": 162.3}


@tool
def convert(amount: float, source: str, target: str) -> float:
    """Convert money between currencies at today's rate.

    Args:
        amount: how much money.
        source: ISO code of the currency you have, e.g. EUR.
        target: ISO code of the currency you want.
    """
    return round(amount / RATES[source.upper()] * RATES[target.upper()], 2)


async def main() -> None:
    model = os.environ.get("AGENTKIT_MODEL", "deepseek-v4-flash")
    async with RemoteBackend("deepseek", model) as backend:
        agent = Agent(backend, [convert], thinking=True, max_turns=8)
        show = EventPrinter()
        messages: list = [UserMessage(content="How many yen is 250 euros?")]
        for follow_up in ["And in dollars?", None]:
            async for event in agent.stream(messages):
                show(event)
                if isinstance(event, Final):
                    messages = event.result.messages
            if follow_up:
                messages.append(UserMessage(content=follow_up))


asyncio.run(main())
