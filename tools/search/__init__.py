"""Search for agents: an embedded full-text index (SQLite FTS5, BM25) and an optional web provider.

    from agentkit.search import SearchIndex, search_tool

    index = SearchIndex("docs.sqlite")
    index.ingest("docs/")                     # again later: only changed files are re-indexed
    hits = await index.search("retry backoff", k=5)
    agent_tool = search_tool(index)           # or search_tool() for the stdlib docs, or a SearXNG URL

Reading order: `base` (Hit, SearchProvider), `query` (any text -> safe FTS5 query), `chunking` and `sources`
(documents -> chunks), `index` (SearchIndex), `stdlib` (the default corpus), `web` (SearXNG), `tool` (the agent
tool), `cli` (`agentkit search ...`).
"""

from agentkit.search.base import Hit, SearchProvider
from agentkit.search.chunking import Chunk, JsonFields
from agentkit.search.errors import (
    FTS5UnavailableError,
    IndexNotFoundError,
    SearchError,
    WebSearchConnectionError,
    WebSearchError,
    WebSearchHTTPError,
    WebSearchResponseError,
    WebSearchTimeout,
)
from agentkit.search.index import IndexStats, IngestReport, SearchIndex, check_fts5
from agentkit.search.query import ParsedQuery, parse_query
from agentkit.search.stdlib import StdlibCorpus, stdlib_index
from agentkit.search.tool import default_search_tool, render_hits, search_tool
from agentkit.search.web import SearxngProvider

__all__ = [
    "Chunk",
    "FTS5UnavailableError",
    "Hit",
    "IndexNotFoundError",
    "IndexStats",
    "IngestReport",
    "JsonFields",
    "ParsedQuery",
    "SearchError",
    "SearchIndex",
    "SearchProvider",
    "SearxngProvider",
    "StdlibCorpus",
    "WebSearchConnectionError",
    "WebSearchError",
    "WebSearchHTTPError",
    "WebSearchResponseError",
    "WebSearchTimeout",
    "check_fts5",
    "default_search_tool",
    "parse_query",
    "render_hits",
    "search_tool",
    "stdlib_index",
]
