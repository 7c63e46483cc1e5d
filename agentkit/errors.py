"""One error hierarchy for the whole framework.

Every error a user can meet derives from `AgentkitError`, so `except AgentkitError` catches all of ours and nothing of
anyone else's. Backend errors mirror HTTP semantics (auth, bad request, rate limit, server, connection) because that is
what a user has to act on; each carries the server's own message, never the API key.

One retry rule covers streaming and non-streaming alike: an error class says whether it is `retryable` (429, 5xx,
transport failures, a cut body or stream, an error object inside a stream); everything else fails at once.
"""

from __future__ import annotations


class AgentkitError(Exception):
    """Base class of every agentkit error."""


class ConfigurationError(AgentkitError):
    """Missing or contradictory configuration (no API key, unknown provider, bad argument)."""


class ToolError(AgentkitError):
    """Raise inside a tool to return a clean error result to the model (no traceback)."""


class ToolDefinitionError(AgentkitError):
    """A function cannot be turned into a tool (unsupported annotation, bad schema)."""


class ToolSourceError(AgentkitError):
    """A source of tools (an MCP server) could not start or list its tools; the run ends with this error."""


class OutputValidationError(AgentkitError):
    """The model gave no answer matching `Agent(output_type=...)` within its retries."""


class BackendError(AgentkitError):
    """A model backend failed. `status` is the HTTP status when there was one; `retryable` says whether another
    attempt may succeed; `retry_after` is the server's requested pause in seconds, if it gave one."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider = provider
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"{self.provider}: " if self.provider else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{where}{code}{self.message}"


class AuthenticationError(BackendError):
    """401/403: the key is missing, wrong or lacks access."""


class BadRequestError(BackendError):
    """400/422: the server refused the request; the message says why."""


class ContextLengthError(BadRequestError):
    """The prompt plus max_tokens exceeds the model's context window."""


class NotFoundError(BackendError):
    """404: wrong base URL or unknown model id."""


class RateLimitError(BackendError):
    """429 that persisted through every retry."""

    retryable = True


class ServerError(BackendError):
    """5xx (or 408/409/425) that persisted through every retry."""

    retryable = True


class ConnectionError(BackendError):  # noqa: A001 - deliberate: agentkit.errors.ConnectionError
    """The server could not be reached, did not answer in time, or cut the response (stream or body) short."""

    retryable = True


class StreamError(BackendError):
    """The server sent an error object inside an otherwise successful response."""

    retryable = True


class ProtocolError(BackendError):
    """The server answered 200 with something that is not the API (an HTML page, another content type, malformed
    JSON or SSE): usually a wrong base URL or a proxy in the way, so it is not retried."""
