"""A minimal agent with one custom tool.

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/quickstart.py
Any OpenAI-compatible server:  AGENTKIT_PROVIDER=vllm VLLM_BASE_URL=http://127.0.0.1:8000/v1 AGENTKIT_MODEL=my-model python examples/quickstart.py
"""

import os

from agentkit import Agent, tool
from agentkit.backends import RemoteBackend


@tool
def word_count(text: str) -> int:
    """Count the words in a text.

    Args:
        text: the text to count.
    """
    return len(text.split())


backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
agent = Agent(backend, [word_count], system_prompt="Use tools for anything you would otherwise guess.")
result = agent.run_sync("How many words are in 'the quick brown fox jumps'?")
print(result.output)
print(f"{result.status}: {result.turns} turns, {result.usage.total_tokens} tokens, ${result.cost:.6f}")
