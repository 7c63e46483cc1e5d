"""The agent-facing `search` tool: one tool over the local index, the stdlib corpus or a web search API.

Results are rendered for a model, not a person: numbered hits, each with its title, where it is from (to cite or
to open) and a snippet with the matched terms marked, under a hard size cap so a search never floods the
context.
"""

from __future__ import annotations

import os
from typing import Any

from agentkit.errors import ToolError
from agentkit.search.base import Hit, SearchProvider
from agentkit.search.errors import SearchError
from agentkit.tools import Tool

DEFAULT_MAX_CHARS = 4_000
SNIPPET_CHARS = 500
_MIN_SNIPPET = 80


def resolve_provider(source: SearchProvider | str | os.PathLike[str] | None) -> SearchProvider:
    """None: the stdlib corpus; "http(s)://...": a SearXNG API; another str or path: an existing index file."""
    if source is None:
        from agentkit.search.stdlib import StdlibCorpus

        return StdlibCorpus()
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        from agentkit.search.web import SearxngProvider

        return SearxngProvider(source)
    if isinstance(source, str | os.PathLike):
        from agentkit.search.index import SearchIndex

        return SearchIndex(source, create=False)
    return source


def search_tool(
    source: SearchProvider | str | os.PathLike[str] | None = None,
    *,
    name: str = "search",
    description: str | None = None,
    default_k: int = 5,
    max_k: int = 10,
    max_chars: int = DEFAULT_MAX_CHARS,
    timeout: float | None = 30.0,
) -> Tool:
    """A `Tool` that searches `source` (a `SearchIndex`, a web provider, a path, a URL, or None for the stdlib).

    The model passes `query` (free text: any string is valid) and optionally `k`; it gets back at most
    `max_chars` characters of numbered hits. Provider failures become error results whose text says what to do.
    """
    provider = resolve_provider(source)
    max_k = max(1, max_k)
    default_k = max(1, min(default_k, max_k))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "A few distinctive keywords. Use \"quotes\" for an exact phrase, word* for a prefix, "
                "-word to exclude a word.",
            },
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": max_k,
                "default": default_k,
                "description": "How many results to return.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    text = description or (
        f"Search {provider.label} and return the best matching passages, each with its source and a snippet "
        "where the matched words are marked **like this**. Results are ranked by relevance (BM25 for local "
        "documents). If nothing is found, try fewer or different keywords."
    )

    async def run(query: str, k: int = default_k) -> str:
        try:
            hits = await provider.search(query, k)
        except SearchError as exc:
            raise ToolError(f"search failed: {exc}") from exc
        return render_hits(query, hits, max_chars)

    return Tool.from_schema(name, text, schema, run, timeout=timeout)


def default_search_tool() -> Tool:
    """`search` over the default corpus, the stdlib documentation (`agentkit run --tool search`)."""
    return search_tool(None)


def render_hits(query: str, hits: list[Hit], max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Numbered hits, compact: `[n] title (source:line)` then the snippet on one line, at most `max_chars`."""
    shown_query = " ".join(query.split())
    shown_query = shown_query if len(shown_query) <= 200 else shown_query[:200] + "…"
    if not hits:
        return (
            f'No results for "{shown_query}". Try fewer or other keywords; use quotes only for an exact phrase.'
        )
    lines = [f'{len(hits)} result{"s" if len(hits) != 1 else ""} for "{shown_query}":']
    used = len(lines[0])
    for number, hit in enumerate(hits, start=1):
        head = f"[{number}] {hit.title} ({hit.citation})"
        snippet = _one_line(hit.snippet or hit.text, SNIPPET_CHARS)
        entry = f"{head}\n    {snippet}" if snippet else head
        room = max_chars - used - 1 - _omitted_len(len(hits) - number)
        if len(entry) > room:
            spare = room - len(head) - 5
            if spare < _MIN_SNIPPET:
                lines.append(_omitted(len(hits) - number + 1, max_chars))
                break
            entry = f"{head}\n    {snippet[: spare - 1]}…"
        lines.append(entry)
        used += len(entry) + 1
    return "\n".join(lines)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _omitted(count: int, max_chars: int) -> str:
    return f"[{count} more result{'s' if count != 1 else ''} not shown: output limit of {max_chars} characters]"


def _omitted_len(remaining: int) -> int:
    return len(_omitted(remaining, 10**6)) + 1 if remaining else 0
