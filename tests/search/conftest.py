"""Fixtures for the search tests: a small corpus with known answers, and a real SearXNG-speaking HTTP server."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agentkit.search import SearchIndex

# Each document is about one thing, so the right answer to a query is known.
CORPUS: dict[str, str] = {
    "geology/volcanoes.md": """
        # Volcanoes

        A volcano is a rupture in the crust of a planet where lava, ash and gases escape.

        ## Eruption types

        Strombolian eruptions eject incandescent cinder; Plinian eruptions send ash columns into the stratosphere.

        ## Monitoring

        Seismometers and tiltmeters watch magma chambers swell before an eruption.
        """,
    "cooking/sourdough.md": """
        # Sourdough bread

        Sourdough is leavened by a starter of wild yeast and lactobacilli instead of baker's yeast.

        ## Feeding the starter

        Feed the starter flour and water every day; it doubles in a few hours when it is active.
        """,
    "networking/tcp.txt": """
        The TCP three-way handshake opens a connection: SYN, SYN-ACK, ACK.

        Congestion control (slow start, congestion avoidance) keeps a sender from flooding the network.
        """,
    "biology/photosynthesis.html": """
        <html><head><title>Photosynthesis</title><style>body { color: chlorophyllgreen }</style>
        <script>var secretScriptWord = 1;</script></head>
        <body><nav>Home | About</nav>
        <h1>Photosynthesis</h1><p>Plants turn light, water and carbon dioxide into glucose and oxygen.</p>
        <h2>Chlorophyll</h2><p>Chlorophyll absorbs red and blue light &amp; reflects green.</p>
        </body></html>
        """,
    "code/retry.py": '''
        """Retry helpers with exponential backoff."""

        import time


        def retry_with_backoff(fn, attempts=3):
            """Call fn until it succeeds, sleeping exponentially longer between attempts."""
            for i in range(attempts):
                try:
                    return fn()
                except OSError:
                    time.sleep(2 ** i)


        class CircuitBreaker:
            """Stops calling a failing service for a cool-down period."""
        ''',
    "data/games.jsonl": "\n".join(
        json.dumps(r)
        for r in [
            {"id": "g1", "title": "Sicilian Defence", "body": "A chess opening: 1.e4 c5, sharp and asymmetrical."},
            {"id": "g2", "title": "Go", "body": "A board game of surrounding territory with black and white stones."},
            {"id": "g3", "title": "Backgammon", "body": "Dice decide how far checkers move in this race game."},
        ]
    ),
    "data/planets.json": json.dumps(
        [
            {"name": "Mars", "summary": "The red planet, with Olympus Mons, the tallest volcano known.", "moons": 2},
            {"name": "Jupiter", "summary": "A gas giant with a great red spot storm.", "moons": 95},
        ]
    ),
}


def write_corpus(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or CORPUS).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def make_corpus() -> Callable[..., Path]:
    """`make_corpus(root, {relative path: text})` writes files (dedented) and returns root."""
    return write_corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> Iterator[SearchIndex]:
    with SearchIndex(tmp_path / "index.sqlite") as idx:
        idx.ingest(corpus)
        yield idx


# --------------------------------------------------------------------------------------------------------------------
# A real HTTP server speaking SearXNG's JSON format.


@dataclass
class Reply:
    """One scripted answer: status, body (dict -> JSON), headers, and a delay before answering."""

    status: int = 200
    body: dict | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeSearxng:
    """Answers GET /search like SearXNG; `script` replies are served first, then the default answer."""

    url: str
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)

    def then(self, status: int = 200, body: dict | str | None = None, *, times: int = 1, **kwargs: Any) -> None:
        """Script the next `times` answers (kwargs: headers, delay)."""
        self.script.extend(Reply(status, body, **kwargs) for _ in range(times))

    def results_for(self, query: str) -> dict:
        return {
            "query": query,
            "number_of_results": 3,
            "results": [
                {
                    "url": f"https://example.org/{i}",
                    "title": f"Result {i} about {query}",
                    "content": f"Page {i} explains {query} in plain words.",
                    "engine": "duckduckgo",
                    "score": 3.0 - i,
                    "category": "general",
                }
                for i in range(3)
            ],
            "answers": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }


def _handler(state: FakeSearxng) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            params = parse_qs(parts.query)
            state.requests.append(params)
            state.request_times.append(time.monotonic())
            if parts.path != "/search":
                return self._send(Reply(404, "Not Found"))
            if params.get("format") != ["json"]:
                return self._send(Reply(403, "Forbidden"))
            reply = state.script.pop(0) if state.script else Reply()
            if reply.body is None and reply.status == 200:
                reply = Reply(200, state.results_for(params.get("q", [""])[0]), reply.headers, reply.delay)
            time.sleep(reply.delay)
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, dict):
                data, kind = json.dumps(reply.body).encode(), "application/json"
            else:
                data, kind = (reply.body or "").encode(), "text/html"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

    return Handler


@pytest.fixture
def searxng() -> Iterator[FakeSearxng]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FakeSearxng("")))
    state = FakeSearxng(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------------------------------
# The stdlib corpus, built once per test session into a temporary cache.


@pytest.fixture(scope="session")
def stdlib_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agentkit.search.stdlib import stdlib_index

    cache = tmp_path_factory.mktemp("agentkit-cache")
    stdlib_index(cache / "search").close()
    return cache
