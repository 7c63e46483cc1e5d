"""`FTSSearch`: the `SearchBackend` of an episode over `agentkit.search`'s SQLite FTS5 index (BM25)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _CorpusDoc:
    """One corpus document as a `agentkit.search` DocumentSource (the key is the document id)."""

    doc_id: str
    title: str
    text: str

    @property
    def key(self) -> str:
        return self.doc_id

    @property
    def config(self) -> str:
        return "agentkit.envs-corpus-v1"

    def stamp(self) -> tuple[int, int] | None:
        return None

    def content(self) -> bytes:
        return f"{self.title}\n{self.text}".encode()

    def chunks(self, content: bytes) -> list[Any]:
        from agentkit.search import Chunk

        return [Chunk(title=self.title, text=self.text, line=1)]


class FTSSearch:
    """`SearchBackend` over `agentkit.search.SearchIndex` (SQLite FTS5, BM25): the task's corpus is indexed into
    `path` (a temporary file by default) under the root "envs". Imported lazily; needs SQLite with FTS5."""

    def __init__(self, corpus: list[dict[str, str]], path: str | None = None) -> None:
        import tempfile

        from agentkit.search import SearchIndex

        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="agentkit.envs-fts-")
            path = f"{self._tmp.name}/corpus.sqlite"
        self.index = SearchIndex(path)
        self.index.add_documents("envs", [_CorpusDoc(d["id"], d.get("title", ""), d.get("text", "")) for d in corpus],
                                 progress=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        seen: dict[str, float] = {}
        for hit in self.index.search_sync(query, k):
            seen.setdefault(hit.source, hit.score)
        return list(seen.items())[:k]

    def close(self) -> None:
        self.index.close()
