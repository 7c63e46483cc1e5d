"""The runner's constants and its framing: requests and answers as frames on the container's attached stream.

Part of the runner (see runner.py): standard library only, runs inside the sandbox container, never on the host.
"""

import json
import os
import selectors
import signal
import struct

PROTOCOL = 1
WORK = os.environ.get("HOME", "/work")
CHUNK = 1 << 16
MAX_NAME = 200  # characters of an exception's class name in an answer
MAX_MESSAGE = 4000  # characters of an exception's message or of an error
MAX_REQUEST = 1 << 20  # bytes of a request's header
EXIT_KILLED = 128 + signal.SIGKILL
SPAWN_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORK,
    "LANG": "C.UTF-8",
    "PYTHONUTF8": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "TERM": "dumb",
}


class Channel:
    """Frames over two file descriptors (the attached stdin and a private duplicate of stdout)."""

    def __init__(self, fd_in, fd_out):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.buf = bytearray()

    def _fill(self, n, idle=None):
        while len(self.buf) < n:
            if idle is not None and not self.buf:
                ready = selectors.DefaultSelector()
                ready.register(self.fd_in, selectors.EVENT_READ)
                while not ready.select(1.0):
                    idle()
                ready.close()
            chunk = os.read(self.fd_in, max(CHUNK, n - len(self.buf)))
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self, n, idle=None):
        self._fill(n, idle)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def receive(self, idle):
        (length,) = struct.unpack(">I", self.read(4, idle))
        if length > MAX_REQUEST:
            raise EOFError  # not our host: stop rather than read on out of step
        header = json.loads(self.read(length))
        return header

    def read_payload_to(self, size, sink):
        """Stream `size` payload bytes into `sink(chunk)` without holding them all in memory."""
        while size > 0:
            if not self.buf:
                self._fill(1)
            take = min(size, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            size -= take

    def send(self, header, payload=b""):
        header["size"] = len(payload)
        head = json.dumps(header).encode()
        self.write(struct.pack(">I", len(head)) + head + payload)

    def write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd_out, view)
            view = view[n:]


def close_fds_except(*keep):
    """Close every descriptor from 3 up but `keep` (close_range(2) underneath): what runs user code inherits none of
    the runner's descriptors."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
