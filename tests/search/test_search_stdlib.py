"""The default corpus: the installed Python's stdlib docs, built offline on first use and cached."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentkit.search import StdlibCorpus, search_tool, stdlib_index
from agentkit.search.stdlib import cache_path

LOOKUPS = [
    ("json dumps", "json.dumps"),
    ("math sqrt", "math.sqrt"),
    ("str split", "builtins.str.split"),
    ("itertools groupby", "itertools.groupby"),
    ("open sqlite database file", "sqlite3.connect"),
    ("shutil copy file", "shutil.copy"),
    ("temporary directory", "tempfile.TemporaryDirectory"),
    ("ordered dict", "collections.OrderedDict"),
    ("subprocess run", "subprocess.run"),
    ("datetime now", "datetime.datetime.now"),
    ("csv reader", "csv.reader"),
]


@pytest.mark.parametrize(("query", "expected"), LOOKUPS)
def test_known_lookups(stdlib_cache: Path, query: str, expected: str) -> None:
    with stdlib_index(stdlib_cache / "search") as index:
        titles = [h.title for h in index.search_sync(query, k=5)]
    assert expected in titles, titles


def test_corpus_covers_modules_c_modules_and_the_language_reference(stdlib_cache: Path) -> None:
    with stdlib_index(stdlib_cache / "search") as index:
        stats = index.stats()
        assert stats.roots == ["stdlib"] and stats.documents > 300 and stats.chunks > 3000
        [topic] = index.search_sync('"Language reference" "with statement"', k=1)
        assert topic.title.startswith("Language reference:") and topic.source == "pydoc_data/topics.py"
        [builtin] = index.search_sync("math factorial", k=1)
        assert builtin.source == "built-in/math" and builtin.text.startswith("math.factorial(")
        [py] = index.search_sync("json dumps", k=5, mode="all")[1:2] or index.search_sync("json.dumps", k=1)
        assert py.source == "json/__init__.py" and py.position and py.position > 1
    # Building reads modules with ast; it never imports pure-Python ones (antigravity would open a browser).
    assert "antigravity" not in sys.modules and "this" not in sys.modules


def test_cached_index_is_reused_not_rebuilt(stdlib_cache: Path) -> None:
    path = cache_path(stdlib_cache / "search")
    before = path.stat().st_mtime_ns
    stdlib_index(stdlib_cache / "search").close()
    assert path.stat().st_mtime_ns == before
    assert not list(path.parent.glob("*.tmp*"))  # the build left no temporary file behind


async def test_default_tool_searches_the_stdlib(stdlib_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKIT_CACHE_DIR", str(stdlib_cache))
    corpus = StdlibCorpus()
    tool = search_tool(corpus)
    assert "standard library" in tool.description
    out = await tool.invoke({"query": "math sqrt", "k": 1})
    assert not out.is_error
    assert out.content.splitlines()[1] == "[1] math.sqrt (built-in/math)"
    corpus.close()


async def test_first_use_builds_into_an_empty_cache(tmp_path: Path) -> None:
    corpus = StdlibCorpus(tmp_path)
    assert not cache_path(tmp_path).exists()
    hits = await corpus.search("heapq heappush", k=1)
    assert hits and hits[0].title == "heapq.heappush"
    assert cache_path(tmp_path).exists()
    corpus.close()
