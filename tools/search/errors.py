"""Errors of the search tool, all under `agentkit.errors.AgentkitError`.

Each message says what to do next, because the reader is either a person at a terminal or a model that has to
decide its next call.
"""

from __future__ import annotations

from agentkit.errors import AgentkitError


class SearchError(AgentkitError):
    """Base class of every search error (index or web provider)."""


class FTS5UnavailableError(SearchError):
    """This Python's sqlite3 was compiled without FTS5, so no full-text index can be built or read."""


class IndexNotFoundError(SearchError):
    """A query named an index file that does not exist (nothing has been indexed there yet)."""


class WebSearchError(SearchError):
    """The web search provider failed. `url` is the endpoint (never with credentials)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class WebSearchTimeout(WebSearchError):
    """The provider did not answer within the timeout, on every attempt."""


class WebSearchConnectionError(WebSearchError):
    """The provider could not be reached (refused, DNS, reset), on every attempt."""


class WebSearchHTTPError(WebSearchError):
    """The provider answered with an HTTP error status (after retries for 429 and 5xx).

    `retry_after` holds the server's `Retry-After` in seconds, when it sent one.
    """

    def __init__(
        self, message: str, *, status: int, url: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.retry_after = retry_after


class WebSearchResponseError(WebSearchError):
    """The provider answered 200 but not with SearXNG's JSON format."""
