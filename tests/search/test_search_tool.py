"""The agent-facing tool: schema, compact rendering under a size cap, and clean error results."""

from __future__ import annotations

from pathlib import Path

from agentkit.search import Hit, SearchIndex, render_hits, search_tool


async def test_tool_schema_and_results(index: SearchIndex) -> None:
    tool = search_tool(index, max_k=8, default_k=2)
    spec = tool.spec()["function"]
    assert spec["name"] == "search"
    assert spec["parameters"]["required"] == ["query"]
    assert spec["parameters"]["properties"]["k"]["maximum"] == 8
    out = await tool.invoke('{"query": "sourdough starter"}')
    lines = out.content.splitlines()
    assert not out.is_error
    assert lines[0] == '2 results for "sourdough starter":'
    assert lines[1] == "[1] Sourdough bread › Feeding the starter (cooking/sourdough.md:5)"
    assert "**starter**" in lines[2] and lines[2].startswith("    ")


async def test_invalid_arguments_are_error_results(index: SearchIndex) -> None:
    tool = search_tool(index, max_k=8)
    for bad in ['{"query": 3}', '{"query": "x", "k": 0}', '{"query": "x", "k": 9}', '{"q": "x"}', "not json"]:
        out = await tool.invoke(bad)
        assert out.is_error and "search(query: string" in out.content, bad


async def test_tool_over_a_path_and_a_missing_path(tmp_path: Path, index: SearchIndex) -> None:
    tool = search_tool(str(index.path), name="docs")
    assert tool.name == "docs"
    assert "Olympus" in (await tool.invoke({"query": "olympus"})).content
    try:
        search_tool(tmp_path / "missing.sqlite")
    except Exception as exc:  # noqa: BLE001 - the type is checked below
        assert "agentkit search index" in str(exc)
    else:
        raise AssertionError("a missing index must be refused when the tool is built")


def test_render_caps_size_and_says_what_was_left_out() -> None:
    hits = [Hit(f"Title {i}", f"docs/file{i}.md", "snippet " * 80, 1.0, i + 1) for i in range(10)]
    full = render_hits("many", hits, max_chars=100_000)
    assert full.count("\n[") == 10 and "not shown" not in full
    for cap in (300, 700, 1500, 4000):
        out = render_hits("many", hits, max_chars=cap)
        assert len(out) <= cap, (cap, len(out))
        assert out.startswith('10 results for "many":\n[1] Title 0 (docs/file0.md:1)')
        assert out.endswith("characters]") and "more results not shown" in out


def test_render_no_results_and_odd_text() -> None:
    assert render_hits("  zzz \n qqq ", []).startswith('No results for "zzz qqq".')
    hit = Hit("T", "https://x.example", "line one\n\n\tline two", 0.5)
    assert render_hits("q", [hit]) == '1 result for "q":\n[1] T (https://x.example)\n    line one line two'
