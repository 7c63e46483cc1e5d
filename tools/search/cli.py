"""`agentkit search ...`: build an index from a folder, query it (or the stdlib docs, or a web API), show stats.

    agentkit search index docs/ --db docs.sqlite
    agentkit search query "retry backoff" --db docs.sqlite -k 5
    agentkit search query "json dumps"                        # the stdlib docs, built on first use
    agentkit search query "sqlite fts5" --web http://127.0.0.1:8888
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from agentkit.search.base import Hit, SearchProvider
from agentkit.search.chunking import JsonFields
from agentkit.search.errors import SearchError

if TYPE_CHECKING:
    from rich.text import Text

#: Markers the CLI asks for, then turns into bold text; never present in ordinary documents.
_MARK = ("\x02", "\x03")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` command group to the agentkit CLI."""
    search = subparsers.add_parser("search", help="full-text search: build an index, query it")
    commands = search.add_subparsers(dest="search_command", metavar="{index,query,stats}", required=True)

    index = commands.add_parser("index", help="index a folder or file (again: only changed files are re-read)")
    index.add_argument("path", help="folder (recursively) or single file to index")
    index.add_argument("--db", required=True, help="index file (created if missing)")
    index.add_argument("--json-title", help="JSON/JSONL field used as the title (default: title, name or id)")
    index.add_argument(
        "--json-text", help="comma-separated JSON/JSONL fields to index (default: every string field)"
    )
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    index.set_defaults(func=_index)

    query = commands.add_parser("query", help="search an index, the stdlib docs (default) or a web API")
    query.add_argument("text", help="the query: free text; \"phrase\", prefix*, -exclude are understood")
    where = query.add_mutually_exclusive_group()
    where.add_argument("--db", help="index file to search (default: the Python stdlib documentation)")
    where.add_argument("--web", metavar="URL", help="a SearXNG-compatible JSON search API")
    query.add_argument("-k", type=int, default=5, help="number of results (default 5)")
    query.add_argument("--json", action="store_true", help="print hits as JSON lines")
    query.set_defaults(func=_query)

    stats = commands.add_parser("stats", help="documents, chunks and size of an index")
    stats.add_argument("--db", required=True, help="index file")
    stats.set_defaults(func=_stats)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _index(args: argparse.Namespace) -> int:
    from agentkit.search.index import SearchIndex

    fields = None
    if args.json_title or args.json_text:
        text = tuple(f.strip() for f in args.json_text.split(",") if f.strip()) if args.json_text else None
        fields = JsonFields(title=args.json_title, text=text)
    try:
        with SearchIndex(args.db) as index:
            report = index.ingest(args.path, json_fields=fields, progress=False if args.no_progress else None)
            stats = index.stats()
    except SearchError as exc:
        return _fail(str(exc))
    print(f"{report.summary()} ({report.chunks_per_s:,.0f} chunks/s)")
    print(f"{args.db}: {stats.documents} documents, {stats.chunks} chunks, {stats.bytes / 1e6:.1f} MB")
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    return 0


def _provider(args: argparse.Namespace) -> SearchProvider:
    if args.web:
        from agentkit.search.web import SearxngProvider

        return SearxngProvider(args.web, markers=_MARK)
    from agentkit.search.index import SearchIndex

    if args.db:
        return SearchIndex(args.db, create=False, markers=_MARK)
    from agentkit.search.stdlib import cache_path, stdlib_index

    if not cache_path().exists():
        print("building the stdlib documentation index (first use, a few seconds)...", file=sys.stderr)
    index = stdlib_index()
    index.markers = _MARK
    return index


async def _search(args: argparse.Namespace) -> list[Hit]:
    provider = _provider(args)
    try:
        return await provider.search(args.text, max(1, args.k))
    finally:
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()
        elif hasattr(provider, "close"):
            provider.close()


def _query(args: argparse.Namespace) -> int:
    try:
        hits = asyncio.run(_search(args))
    except SearchError as exc:
        return _fail(str(exc))
    if args.json:
        for hit in hits:
            record = dataclasses.asdict(hit)
            record["snippet"] = hit.snippet.replace(_MARK[0], "**").replace(_MARK[1], "**")
            print(json.dumps(record, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console()
    if not hits:
        console.print(f"no results for {args.text!r}")
        return 0
    for number, hit in enumerate(hits, start=1):
        head = Text(f"{number}. ", style="bold")
        head.append(hit.title, style="bold cyan")
        head.append(f"  {hit.citation}  ", style="dim")
        head.append(f"{hit.score:.2f}", style="dim")
        console.print(head)
        console.print(_marked(" ".join(hit.snippet.split())), soft_wrap=False)
    return 0


def _marked(snippet: str) -> Text:
    """The snippet as rich Text, matched terms in bold yellow."""
    from rich.text import Text

    text = Text("   ")
    for i, part in enumerate(snippet.replace(_MARK[1], _MARK[0]).split(_MARK[0])):
        text.append(part, style="bold yellow" if i % 2 else None)
    return text


def _stats(args: argparse.Namespace) -> int:
    from agentkit.search.index import SearchIndex

    try:
        with SearchIndex(args.db, create=False) as index:
            stats = index.stats()
    except SearchError as exc:
        return _fail(str(exc))
    print(f"{args.db}: {stats.documents} documents, {stats.chunks} chunks, {stats.bytes / 1e6:.1f} MB")
    for root in stats.roots:
        print(f"  root: {root}")
    return 0
