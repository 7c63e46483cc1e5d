"""Many agents on one index: concurrent queries agree with sequential ones, a writer never blocks readers, and
a query never blocks the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from agentkit.search import SearchIndex
from agentkit.search.chunking import Chunk

QUERIES = ["eruption ash", "sourdough starter", "handshake", "chlorophyll", "backoff", "chess", "red planet", "nothing"]


async def test_concurrent_queries_match_sequential_results(index: SearchIndex) -> None:
    expected = {q: index.search_sync(q, 3) for q in QUERIES}
    queries = QUERIES * 40
    results = await asyncio.gather(*(index.search(q, k=3) for q in queries))
    for query, hits in zip(queries, results, strict=True):
        assert hits == expected[query]
    # The calling thread and each of the (at most 4) worker threads opened their own read connection.
    assert 2 < len(index._readers) <= 1 + 4


class _Bulk:
    """A synthetic document of many chunks that all contain a very common word (slow OR queries)."""

    config = "bulk-v1"

    def __init__(self, key: str, n: int, word: str) -> None:
        self.key, self.n, self.word = key, n, word

    def stamp(self) -> None:
        return None

    def content(self) -> bytes:
        return f"{self.key}:{self.n}:{self.word}".encode()

    def chunks(self, content: bytes) -> list[Chunk]:
        filler = " ".join(f"w{i % 97} common" for i in range(30))
        return [Chunk(f"{self.key} {i}", f"{filler} {self.word} item{i}", i + 1) for i in range(self.n)]


async def test_queries_do_not_block_the_event_loop(tmp_path: Path) -> None:
    with SearchIndex(tmp_path / "big.sqlite", read_threads=2) as idx:
        idx.add_documents("bulk", [_Bulk("d", 30_000, "shared")])
        started = time.perf_counter()
        idx.search_sync("common shared w1 w2 w3", k=5, mode="any")
        one_query = time.perf_counter() - started
        assert one_query > 0.01, "the slow query should take a noticeable time for this test to mean anything"

        gaps: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.01)
        await asyncio.gather(*(idx.search("common shared w1 w2 w3", k=5, mode="any") for _ in range(12)))
        done.set()
        await beat
        # Blocking queries would stall the loop for at least one query's duration at a time.
        assert len(gaps) > 12
        assert max(gaps) < max(one_query * 0.75, 0.005), (max(gaps), one_query)


def test_writer_and_readers_in_threads(tmp_path: Path) -> None:
    """Readers on their own threads keep answering while a writer replaces documents; they see whole commits."""
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.add_documents("live", [_Bulk("v", 300, "alpha")])
        errors: list[BaseException] = []
        seen_counts: set[int] = set()
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    hits = idx.search_sync("item7", k=5)
                    seen_counts.add(len(hits))
                    words = {h.text.split()[-2] for h in hits}
                    assert len(words) <= 1, words  # never a mix of two versions within one answer
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for round_ in range(6):
            idx.add_documents("live", [_Bulk("v", 300, "beta" if round_ % 2 == 0 else "alpha")])
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        assert seen_counts == {1}
        assert [h.text.split()[-2] for h in idx.search_sync("item7")] == ["alpha"]
