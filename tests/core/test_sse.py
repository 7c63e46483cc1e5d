"""SSE decoding at every possible chunk boundary: inside UTF-8 characters, between CR and LF, inside field names."""

from __future__ import annotations

import pytest

from agentkit.backends.sse import SSEDecoder, SSEEvent

STREAM = (
    ": keep-alive\r\n\r\n"
    'data: {"a": "héllo 🚀"}\r\n\r\n'
    "event: error\r\ndata: line1\r\ndata: line2\r\n\r\n"
    ":ping\n\n"
    "data:no-space\r\r"
    "data: [DONE]\n\n"
).encode()
EXPECTED = [
    SSEEvent('{"a": "héllo 🚀"}'),
    SSEEvent("line1\nline2", "error"),
    SSEEvent("no-space"),
    SSEEvent("[DONE]"),
]


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    d = SSEDecoder()
    out = []
    for c in chunks:
        out += d.feed(c)
    return out + d.close()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_every_split_size(size: int) -> None:
    assert decode([STREAM[i : i + size] for i in range(0, len(STREAM), size)]) == EXPECTED


def test_every_single_split_point() -> None:
    for i in range(len(STREAM)):
        assert decode([STREAM[:i], STREAM[i:]]) == EXPECTED, f"split at byte {i}"


def test_last_event_without_trailing_blank_line() -> None:
    assert decode([b"data: x\n\ndata: tail"]) == [SSEEvent("x"), SSEEvent("tail")]
