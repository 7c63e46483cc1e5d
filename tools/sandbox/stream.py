"""The attached stream to a container's runner, spoken directly over asyncio (no thread per call).

`docker attach` is an HTTP request upgraded to a raw bidirectional stream: what we write arrives on the runner's stdin,
what the runner writes arrives multiplexed (an 8-byte header per chunk says stdout or stderr, and how long). The SDK
only offers this as a blocking socket; doing the upgrade ourselves on an asyncio connection makes an execution a plain
message round trip on the event loop, which is what keeps its latency at a millisecond or two.

Frames on top of the runner's stdout and stdin are `u32 length | JSON header | payload` (see runner.py).
"""

from __future__ import annotations

import asyncio
import collections
import json
import struct
from typing import Any

from agentkit.sandbox.engine import EngineAddress
from agentkit.sandbox.errors import SandboxDied, SandboxProtocolError

STDOUT, STDERR = 1, 2
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 31  # far above any answer the runner's caps allow


class AttachStream:
    """Frames to and from the runner of one container."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buf = bytearray()
        self._pos = 0
        self.runner_stderr: collections.deque[bytes] = collections.deque(maxlen=64)

    @classmethod
    async def open(cls, address: EngineAddress, container_id: str) -> AttachStream:
        """Attach to stdin, stdout and stderr of a container (before it starts, so no output is missed)."""
        reader, writer = await address.connect()
        writer.write(
            (
                f"POST /containers/{container_id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status and " 200 " not in status:
            writer.close()
            raise SandboxDied(f"could not attach to container {container_id[:12]}: {status}")
        return cls(reader, writer)

    # -- frames -------------------------------------------------------------------------------------------------------

    async def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        header = {**header, "size": len(payload)}
        head = json.dumps(header).encode()
        self._writer.write(struct.pack(">I", len(head)) + head)
        if payload:
            self._writer.write(payload)
        await self._writer.drain()

    async def receive(self) -> tuple[dict[str, Any], bytes]:
        (length,) = struct.unpack(">I", await self._read(4))
        if length > MAX_HEADER:
            raise SandboxProtocolError(f"the runner sent a {length}-byte header; the stream is corrupt")
        try:
            header = json.loads(await self._read(length))
        except ValueError as exc:
            raise SandboxProtocolError(f"the runner sent a header that is not JSON: {exc}") from exc
        size = header.get("size", 0) if isinstance(header, dict) else None
        if not isinstance(size, int) or not 0 <= size <= MAX_PAYLOAD:
            raise SandboxProtocolError(
                f"the runner announced a payload of {size!r} bytes; the stream is corrupt"
            )
        payload = await self._read(size)
        return header, payload

    async def _read(self, n: int) -> bytes:
        """n bytes of the runner's stdout, demultiplexing the engine's chunks."""
        while len(self._buf) - self._pos < n:
            try:
                chunk_head = await self._reader.readexactly(8)
                kind, size = chunk_head[0], struct.unpack(">I", chunk_head[4:])[0]
                data = await self._reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise EOFError("the container's stream ended") from exc
            if kind == STDERR:
                self.runner_stderr.append(data)
            elif kind == STDOUT:
                if self._pos:
                    del self._buf[: self._pos]
                    self._pos = 0
                self._buf += data
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return out

    def stderr_text(self) -> str:
        return b"".join(self.runner_stderr).decode(errors="replace")[-4000:]

    def close(self) -> None:
        self._writer.close()
