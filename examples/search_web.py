"""Web search through a SearXNG instance (self-hosted metasearch; enable `json` in its `search.formats`).

    SEARXNG_URL=http://127.0.0.1:8888 python examples/search_web.py "sqlite fts5 bm25"
"""

import asyncio
import os
import sys

from agentkit.search import SearxngProvider, WebSearchError, search_tool


async def main() -> int:
    query = " ".join(sys.argv[1:]) or "sqlite fts5 bm25"
    async with SearxngProvider(os.environ.get("SEARXNG_URL", "http://127.0.0.1:8888"), timeout=10) as web:
        try:
            for hit in await web.search(query, k=5):
                print(f"- {hit.title}\n  {hit.source}\n  {hit.snippet}")
        except WebSearchError as exc:
            print(f"search failed: {exc}", file=sys.stderr)
            return 1
        # The same provider behind the agent tool: failures become error results the model can read.
        print((await search_tool(web).invoke({"query": query, "k": 3})).content)
    return 0


raise SystemExit(asyncio.run(main()))
