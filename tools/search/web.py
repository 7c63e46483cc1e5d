"""Web search through an HTTP search API that speaks SearXNG's JSON format (`GET /search?q=...&format=json`).

SearXNG is a self-hostable metasearch engine; its JSON answer is `{"query", "results": [{"url", "title",
"content", "engine", "score", ...}], "answers", "suggestions", "unresponsive_engines", ...}`. Any service that
answers in that shape works. Transient failures (timeouts, refused or reset connections, 429 and 5xx) are
retried with exponential backoff (tenacity), honouring `Retry-After`; the rest fail at once. Every failure is
a typed `WebSearchError` whose message says what to check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agentkit.search.base import DEFAULT_MARKERS, Hit
from agentkit.search.errors import (
    WebSearchConnectionError,
    WebSearchError,
    WebSearchHTTPError,
    WebSearchResponseError,
    WebSearchTimeout,
)
from agentkit.search.query import parse_query

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SNIPPET_CHARS = 400


class SearxngProvider:
    """A `SearchProvider` backed by a SearXNG-compatible JSON search API at `base_url`.

    `timeout` bounds each attempt (seconds); `retries` is the total number of attempts for transient errors.
    `categories`, `engines`, `language` and `safesearch` are passed through as SearXNG parameters. `transport`
    is httpx's seam for tests and proxies. Use one provider per event loop; `aclose()` (or `async with`) ends it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        categories: str | None = None,
        engines: str | None = None,
        language: str | None = None,
        safesearch: int | None = None,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        markers: tuple[str, str] = DEFAULT_MARKERS,
        label: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise WebSearchError(f"base URL {base_url!r} is not an http(s) URL, e.g. http://127.0.0.1:8888")
        self.url = base_url.rstrip("/") if base_url.rstrip("/").endswith("/search") else base_url.rstrip("/") + "/search"
        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.markers = markers
        self._params = {
            k: v
            for k, v in {
                "categories": categories,
                "engines": engines,
                "language": language,
                "safesearch": safesearch,
            }.items()
            if v is not None
        }
        self._headers = {"Accept": "application/json", "User-Agent": "agentkit-search/0.1", **(headers or {})}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._label = label or f"the web (through the search API at {parts.netloc})"

    @property
    def label(self) -> str:
        return self._label

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                headers=self._headers,
                transport=self._transport,
                follow_redirects=True,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> SearxngProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def search(self, query: str, k: int = 5) -> list[Hit]:
        """Up to `k` results for `query`; an empty query is an empty result, without a request."""
        if not query or not query.strip():
            return []
        params = {"q": query, "format": "json", "pageno": 1, **self._params}
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    data = await self._once(params)
        except WebSearchError as exc:
            if attempts > 1 and _retryable(exc):
                raise _after_attempts(exc, attempts) from exc
            raise
        return self._hits(data, query, max(1, k))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, WebSearchHTTPError) and exc.retry_after is not None:
            return float(min(exc.retry_after, self.max_backoff))
        return float(min(self.backoff * 2 ** (state.attempt_number - 1), self.max_backoff))

    async def _once(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http().get(self.url, params=params)
        except httpx.TimeoutException as exc:
            raise WebSearchTimeout(
                f"the search API at {self.url} did not answer within {self.timeout:g} s; "
                "check that it is up, or raise the timeout",
                url=self.url,
            ) from exc
        except httpx.TransportError as exc:
            raise WebSearchConnectionError(
                f"could not reach the search API at {self.url} ({type(exc).__name__}: {exc}); "
                "check the base URL and that the server is running",
                url=self.url,
            ) from exc
        if response.status_code != 200:
            raise _http_error(response, self.url)
        try:
            data = response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise WebSearchResponseError(
                f"the search API at {self.url} answered {kind}, not JSON: is this a SearXNG /search endpoint "
                "with `json` in `search.formats`?",
                url=self.url,
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise WebSearchResponseError(
                f"the search API at {self.url} answered JSON without a `results` list: "
                "it does not speak SearXNG's format",
                url=self.url,
            )
        return data

    def _hits(self, data: dict[str, Any], query: str, k: int) -> list[Hit]:
        highlight = _highlighter(parse_query(query).terms, self.markers)
        hits: list[Hit] = []
        for item in data["results"]:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            content = item.get("content") if isinstance(item.get("content"), str) else ""
            title = item.get("title") if isinstance(item.get("title"), str) and item.get("title") else item["url"]
            score = item.get("score")
            hits.append(
                Hit(
                    title=" ".join(str(title).split()),
                    source=item["url"],
                    snippet=highlight(_shorten(" ".join(str(content).split()), SNIPPET_CHARS)),
                    score=float(score) if isinstance(score, int | float) else 0.0,
                    text=str(content),
                )
            )
            if len(hits) >= k:
                break
        return hits


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, WebSearchHTTPError):
        return exc.status in RETRY_STATUSES
    return isinstance(exc, WebSearchTimeout | WebSearchConnectionError)


def _after_attempts(exc: WebSearchError, attempts: int) -> WebSearchError:
    message = f"{exc} (gave up after {attempts} attempts)"
    if isinstance(exc, WebSearchHTTPError):
        return WebSearchHTTPError(message, status=exc.status, url=exc.url, retry_after=exc.retry_after)
    return type(exc)(message, url=exc.url)


_STATUS_HINTS = {
    403: "SearXNG answers 403 when the JSON format is off: add `json` to `search.formats` in its settings.yml",
    404: "no search endpoint there: check the base URL (it should point at the SearXNG instance)",
    429: "the server is rate limiting us: query less often or raise its limiter settings",
}


def _http_error(response: httpx.Response, url: str) -> WebSearchHTTPError:
    status = response.status_code
    hint = _STATUS_HINTS.get(status) or (
        "the server failed; try again later" if status >= 500 else "the server refused the request"
    )
    body = " ".join(response.text.split())[:200]
    return WebSearchHTTPError(
        f"the search API at {url} answered HTTP {status}: {hint}" + (f" (server said: {body})" if body else ""),
        status=status,
        url=url,
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (the delta-seconds form; HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit] + " …"


def _highlighter(terms: list[str], markers: tuple[str, str]) -> Callable[[str], str]:
    """Mark whole-word, case-insensitive occurrences of the query terms (FTS5 does this for the index)."""
    if not terms:
        return lambda text: text
    alternatives = "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)({alternatives})(?!\w)", re.IGNORECASE)
    return lambda text: pattern.sub(lambda m: f"{markers[0]}{m.group(1)}{markers[1]}", text)
