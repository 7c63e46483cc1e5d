"""One retry budget per turn, shared by the backend and the loop.

A turn may fail in two places: before the backend delivered anything (refused, timed out, 429/5xx, a body cut before
it parsed) and after it began to stream (a stream cut midway). The backend retries the first kind, the loop the second
(and only while no tool call has arrived). Both draw on the same `RetryBudget`, so a turn makes at most
`RetryPolicy.max_attempts` requests in all, starts no attempt after `window` seconds, and never waits past the run's
deadline. What one failing turn can cost at most is `RetryPolicy.worst_case_seconds` (see the backend's constants).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts every request of a turn, the first included. Waits double from `backoff_base` up to
    `backoff_max`; a server's Retry-After is honoured up to `max_retry_after` (longer: fail now). No attempt starts
    (and no wait begins) once `window` seconds have passed since the turn's first attempt."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    window: float = 120.0

    def backoff(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based) when the server gave no Retry-After."""
        return min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))

    def worst_case_seconds(self, attempt_seconds: float) -> float:
        """How long one turn can fail for, when a failed attempt takes at most `attempt_seconds` (timeouts): the last
        attempt starts by `window` (or after every earlier attempt and its longest pause) and ends within
        `attempt_seconds`."""
        longest_pause = max(self.backoff_max, self.max_retry_after)
        before_last = (self.max_attempts - 1) * (attempt_seconds + longest_pause)
        return min(self.window, before_last) + attempt_seconds


class RetryBudget:
    """The attempts of one turn. `start_attempt()` before each request; `next_wait(...)` after a retryable failure
    says how long to pause before the next one, or None when the count, the window or the deadline says stop."""

    def __init__(self, policy: RetryPolicy | None = None, *, deadline: float | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self.deadline = deadline  # time.monotonic() value, or None
        self.started = time.monotonic()
        self.attempts = 0

    def start_attempt(self) -> None:
        self.attempts += 1

    def next_wait(self, retry_after: float | None = None) -> float | None:
        p = self.policy
        if self.attempts >= p.max_attempts:
            return None
        if retry_after is not None and retry_after > p.max_retry_after:
            return None
        wait = retry_after if retry_after is not None else p.backoff(max(self.attempts, 1))
        now = time.monotonic()
        if now + wait - self.started > p.window:
            return None
        if self.deadline is not None and now + wait >= self.deadline:
            return None
        return wait
