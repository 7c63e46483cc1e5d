"""The web provider against a real local HTTP server speaking SearXNG's JSON format: results, retries, errors."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from agentkit.search import (
    SearxngProvider,
    WebSearchConnectionError,
    WebSearchError,
    WebSearchHTTPError,
    WebSearchResponseError,
    WebSearchTimeout,
    search_tool,
)

# `searxng` is the FakeSearxng fixture of conftest.py: a real ThreadingHTTPServer on 127.0.0.1.


async def test_results_are_parsed_ranked_and_highlighted(searxng: Any) -> None:
    async with SearxngProvider(searxng.url, categories="general", language="en") as web:
        hits = await web.search("sqlite fts5", k=2)
    assert [h.source for h in hits] == ["https://example.org/0", "https://example.org/1"]
    assert hits[0].title == "Result 0 about sqlite fts5"
    assert hits[0].snippet == "Page 0 explains **sqlite** **fts5** in plain words."
    assert hits[0].score == 3.0 and hits[0].position is None and hits[0].citation == "https://example.org/0"
    [params] = searxng.requests
    assert params["q"] == ["sqlite fts5"] and params["format"] == ["json"]
    assert params["categories"] == ["general"] and params["language"] == ["en"]


async def test_empty_query_sends_nothing(searxng: Any) -> None:
    async with SearxngProvider(searxng.url) as web:
        assert await web.search("   ") == []
    assert searxng.requests == []


async def test_odd_result_entries_are_tolerated(searxng: Any) -> None:
    body = {
        "results": [
            {"title": "no url"},
            "not a dict",
            {"url": "https://a.example", "title": "", "content": None, "score": "high"},
            {"url": "https://b.example", "title": "B", "content": "x" * 2000},
        ]
    }
    searxng.then(body=body)
    async with SearxngProvider(searxng.url) as web:
        a, b = await web.search("anything", k=5)
    assert (a.title, a.snippet, a.score) == ("https://a.example", "", 0.0)
    assert len(b.snippet) < 450 and b.snippet.endswith("…")


async def test_transient_errors_are_retried_then_succeed(searxng: Any) -> None:
    searxng.then(503, "overloaded")
    searxng.then(502, "bad gateway")
    async with SearxngProvider(searxng.url, retries=3, backoff=0.01) as web:
        hits = await web.search("retry me")
    assert len(hits) == 3 and len(searxng.requests) == 3


async def test_retry_after_is_honoured(searxng: Any) -> None:
    searxng.then(429, "slow down", headers={"Retry-After": "0.4"})
    async with SearxngProvider(searxng.url, retries=2, backoff=0.01) as web:
        assert await web.search("patience")
    gap = searxng.request_times[1] - searxng.request_times[0]
    assert gap >= 0.35, gap


async def test_persistent_server_errors_give_up_with_a_typed_error(searxng: Any) -> None:
    searxng.then(500, "boom", times=3)
    async with SearxngProvider(searxng.url, retries=3, backoff=0.01) as web:
        with pytest.raises(WebSearchHTTPError, match="HTTP 500.*after 3 attempts") as info:
            await web.search("doomed")
    assert info.value.status == 500 and len(searxng.requests) == 3


async def test_client_errors_are_not_retried_and_explain_themselves(searxng: Any) -> None:
    searxng.then(403, "Forbidden")
    async with SearxngProvider(searxng.url, retries=3, backoff=0.01) as web:
        with pytest.raises(WebSearchHTTPError, match="search.formats") as info:
            await web.search("json off")
    assert info.value.status == 403 and len(searxng.requests) == 1

    async with SearxngProvider(searxng.url + "/wrong/path/", retries=3) as web:
        with pytest.raises(WebSearchHTTPError, match="check the base URL"):
            await web.search("where")


async def test_timeout_path(searxng: Any) -> None:
    searxng.then(delay=1.0, times=2)
    started = time.monotonic()
    async with SearxngProvider(searxng.url, timeout=0.2, retries=2, backoff=0.01) as web:
        with pytest.raises(WebSearchTimeout, match="did not answer within 0.2 s.*after 2 attempts"):
            await web.search("slow")
    assert time.monotonic() - started < 1.5
    assert len(searxng.requests) == 2


async def test_timeout_then_recovery(searxng: Any) -> None:
    searxng.then(delay=1.0)
    async with SearxngProvider(searxng.url, timeout=0.2, retries=2, backoff=0.01) as web:
        assert len(await web.search("second time lucky")) == 3


async def test_connection_refused() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with SearxngProvider(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as web:
        with pytest.raises(WebSearchConnectionError, match="could not reach.*after 2 attempts"):
            await web.search("anyone")


@pytest.mark.parametrize(
    ("body", "match"),
    [("<html>not json</html>", "not JSON"), ({"answers": []}, "without a `results` list")],
)
async def test_wrong_format_is_a_response_error(searxng: Any, body: Any, match: str) -> None:
    searxng.then(200, body)
    async with SearxngProvider(searxng.url) as web:
        with pytest.raises(WebSearchResponseError, match=match):
            await web.search("format")


def test_bad_base_url_is_refused_up_front() -> None:
    with pytest.raises(WebSearchError, match="not an http"):
        SearxngProvider("localhost:8888")


async def test_web_results_and_errors_through_the_tool(searxng: Any) -> None:
    web = SearxngProvider(searxng.url, retries=1)
    tool = search_tool(web)
    assert "the web" in tool.description
    ok = await tool.invoke({"query": "agent frameworks", "k": 2})
    assert not ok.is_error
    assert ok.content.splitlines()[:2] == [
        '2 results for "agent frameworks":',
        "[1] Result 0 about agent frameworks (https://example.org/0)",
    ]
    searxng.then(403, "Forbidden")
    failed = await tool.invoke({"query": "agent frameworks"})
    assert failed.is_error and "search.formats" in failed.content
    await web.aclose()
