"""An agent that looks things up in the Python standard library documentation (indexed offline on first use).

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/search_agent.py
Any OpenAI-compatible server:  AGENTKIT_PROVIDER=vllm VLLM_BASE_URL=http://127.0.0.1:8000/v1 AGENTKIT_MODEL=m python examples/search_agent.py
Your own documents instead:  agentkit search index docs/ --db docs.sqlite, then search_tool("docs.sqlite").
"""

import os

from agentkit import Agent
from agentkit.backends import RemoteBackend
from agentkit.search import search_tool

backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
agent = Agent(
    backend,
    [search_tool()],  # no argument: the stdlib docs; or a SearchIndex, an index path, or a SearXNG URL
    system_prompt="Answer from what the search tool returns and cite the source of each fact.",
)
result = agent.run_sync("Which function in the standard library merges several sorted iterables lazily?")
print(result.output)
print(f"{result.status}: {result.turns} turns, {result.tool_calls} searches, {result.usage.total_tokens} tokens")
