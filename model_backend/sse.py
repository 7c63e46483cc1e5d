"""Server-sent events, decoded incrementally from raw bytes.

Network chunks split anywhere: inside a UTF-8 character, between CR and LF, inside a field. The decoder keeps the
partial state and emits complete events only; comments (`: keep-alive`) and unknown fields are skipped, as the SSE
specification says.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += self._utf8.decode(chunk)
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        self._buffer += self._utf8.decode(b"", final=True)
        events = self._drain(final=True)
        if self._buffer:
            events += self._line(self._buffer)
            self._buffer = ""
        events += self._line("")  # a stream may end without the blank line that dispatches the last event
        return events

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        buf = self._buffer
        start = 0
        n = len(buf)
        while True:
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr != -1 and (lf == -1 or cr < lf):
                if cr + 1 == n and not final:
                    break  # a CR at the end may be the first half of CRLF: wait for the next chunk
                end, nxt = cr, cr + 2 if cr + 1 < n and buf[cr + 1] == "\n" else cr + 1
            else:
                end, nxt = lf, lf + 1
            events += self._line(buf[start:end])
            start = nxt
        self._buffer = buf[start:]
        return events

    def _line(self, line: str) -> list[SSEEvent]:
        if not line:
            if not self._data:
                self._event = None
                return []
            event = SSEEvent("\n".join(self._data), self._event)
            self._data, self._event = [], None
            return [event]
        if line.startswith(":"):
            return []
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return []


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event
