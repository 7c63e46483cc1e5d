"""A conversation over several user turns: each run continues the transcript of the one before.

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/conversation.py

`agent.run(task, history=previous.messages)` is all it takes; `Conversation` keeps the messages for you. The
transcript keeps every reasoning, and the backend sends back exactly what the provider wants (DeepSeek V4: the
reasoning of each turn that used tools, in all later requests).
"""

import asyncio
import os

from agentkit import Agent, Conversation, tool
from agentkit.backends import RemoteBackend


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


async def main() -> None:
    backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
    agent = Agent(backend, [word_count])

    first = await agent.run("How many words are in 'the quick brown fox'?")
    second = await agent.run("And in 'jumps over the lazy dog'?", history=first.messages)
    print("turn 2:", second.output, f"({second.status})")

    conv = Conversation(agent)  # the same, with the messages kept between turns
    for question in ("Count the words in 'a b c'.", "Now double that number."):
        result = await conv.send(question)
        print(">", question, "\n<", result.output, f"({result.status})")


asyncio.run(main())
