"""Any text is a valid query: hostile strings never raise, and the little syntax we honour works."""

from __future__ import annotations

import pytest

from agentkit.search import SearchIndex, parse_query, search_tool

HOSTILE = [
    "",
    " ",
    "\t\n\r",
    '"',
    '""',
    '"""',
    "'",
    '"unbalanced quote',
    "(",
    ")",
    "((volcano)",
    "volcano)",
    "*",
    "**",
    "volcano*",
    "*volcano",
    "-",
    "--",
    "-volcano",
    "--verbose",
    "- - -",
    "AND",
    "OR",
    "NOT",
    "volcano AND",
    "OR volcano",
    "NOT volcano",
    "volcano NOT",
    "AND OR NOT",
    "NEAR(volcano ash)",
    "NEAR/2",
    "title:volcano",
    "body:",
    ":",
    "{title body}: volcano",
    "^volcano",
    "+volcano",
    "volcano +ash",
    "C++",
    "c#",
    "a.b.c()",
    "os.path.join(",
    "SELECT * FROM chunks_fts; DROP TABLE chunks;",
    "'; DROP TABLE documents; --",
    "\\",
    "\\\"",
    "\x00",
    "volcano\x00ash",
    "\ud800",
    "volcano\udfff",
    "💥🔥",
    "volcano 💥",
    "日本語の検索",
    "Ünïcödé çàfé",
    "\u200b\u200d",
    "x" * 5000,
    "volcano " * 400,
    "% _ [ ] $ # @ ! ~ ` | < > ? / = &",
    "1.e4 c5",
    "-1",
    "lava -",
    "-- volcano",
    '"volcano" "ash',
    '"  "',
    "**bold** __under__",
    "the",
    "the and of",
]


def test_at_least_thirty_hostile_queries() -> None:
    assert len(set(HOSTILE)) >= 30


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_query_never_raises(index: SearchIndex, query: str) -> None:
    parsed = parse_query(query)
    for expr in (parsed.all_of(), parsed.any_of()):
        assert expr is None or expr.count('"') % 2 == 0
    for mode in ("auto", "all", "any"):
        hits = await index.search(query, k=3, mode=mode)  # type: ignore[arg-type]
        assert isinstance(hits, list) and len(hits) <= 3


async def test_hostile_queries_through_the_tool(index: SearchIndex) -> None:
    tool = search_tool(index)
    for query in HOSTILE:
        out = await tool.invoke({"query": query, "k": 2})
        assert not out.is_error, (query, out.content)
        assert out.content.startswith(("No results", "1 result", "2 results"))


async def test_operators_are_words_not_syntax(index: SearchIndex) -> None:
    # "volcano)" and "volcano AND" must find the volcano document, not fail or find nothing.
    for query in ["volcano)", "((volcano)", "volcano AND", "title:volcano", "^volcano", "+volcano"]:
        hits = await index.search(query, k=1)
        assert hits and hits[0].source == "geology/volcanoes.md", query


def test_parse_phrase_prefix_exclusion_stopwords() -> None:
    parsed = parse_query('how do I feed "the starter" yeas* -bread')
    assert [c.words for c in parsed.include] == [("feed",), ("the", "starter"), ("yeas",)]
    assert [c.prefix for c in parsed.include] == [False, False, True]
    assert [c.words for c in parsed.exclude] == [("bread",)]
    assert parsed.all_of() == '("feed" AND "the starter" AND "yeas"*) NOT ("bread")'
    assert parsed.any_of() == '("feed" OR "the starter" OR "yeas"*) NOT ("bread")'


def test_parse_edge_rules() -> None:
    assert parse_query("the and of").terms == ["the", "and", "of"]  # only stop words: keep them
    assert parse_query("-volcano").terms == ["volcano"]  # nothing to exclude from: include instead
    assert parse_query("--verbose").exclude == ()  # a flag, not an exclusion
    assert parse_query("ab*").include[0].prefix is False  # too short a prefix
    assert parse_query("os.path.join").include[0].words == ("os", "path", "join")
    assert parse_query("Volcano volcano VOLCANO").terms == ["Volcano"]
    assert len(parse_query(" ".join(f"w{i}" for i in range(100))).include) == 16


async def test_phrase_prefix_and_exclusion_on_the_index(index: SearchIndex) -> None:
    assert [h.source for h in await index.search('"three-way handshake"')] == ["networking/tcp.txt"]
    assert await index.search('"handshake three-way"', mode="all") == []
    prefix = await index.search("strombol*", k=1)
    assert prefix and prefix[0].title == "Volcanoes › Eruption types"
    with_red = {h.title for h in await index.search("red", k=10)}
    without = {h.title for h in await index.search("red -storm", k=10)}
    assert {"Mars", "Jupiter"} <= with_red and "Jupiter" not in without and "Mars" in without
