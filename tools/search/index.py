"""`SearchIndex`: an embedded full-text index on SQLite FTS5 with BM25 ranking. No server, no download.

Layout of the database file (one file plus SQLite's `-wal`/`-shm` while open):

- `documents`: one row per indexed document (root folder, key = path relative to it, content hash, chunking
  config, size and mtime), so that re-indexing skips what did not change and drops what disappeared;
- `chunks`: one row per chunk (document and start line); its id is the rowid of the chunk in
- `chunks_fts`: the FTS5 table that is searched and ranked by BM25 over three columns: `title` (weight 5: a
  matching heading or qualified name is the strongest evidence), `body` (1) and `keywords` (3: the words inside
  CamelCase identifiers of the title, so "thread pool executor" finds `ThreadPoolExecutor`). Words are
  case-folded, stripped of diacritics and Porter-stemmed (English), so "volcano" finds "volcanoes".

Concurrency: one writer connection behind a lock, and one read connection per thread (SQLite connections must
not be shared between threads mid-query). The file is in WAL mode, so readers never wait for the writer and see
the last committed state. `await index.search(...)` runs the query on the index's own thread pool, so the event
loop never blocks and many agents can query one index at once (sqlite3 releases the GIL while it works).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentkit.search.base import DEFAULT_MARKERS, Hit
from agentkit.search.chunking import DEFAULT_MAX_CHARS, Chunk, JsonFields, identifier_words
from agentkit.search.errors import FTS5UnavailableError, IndexNotFoundError, SearchError
from agentkit.search.query import ParsedQuery, parse_query
from agentkit.search.sources import DEFAULT_MAX_FILE_BYTES, DocumentSource, file_source, walk_folder

SCHEMA_VERSION = 1
MAX_K = 100
#: Chunks written per transaction during bulk ingest: large enough to amortise commits, small enough to keep the
#: WAL file and the memory of one transaction bounded.
COMMIT_EVERY = 20_000
#: A bulk ingest that writes at least this many chunks ends by merging the index into one b-tree ("optimize"):
#: about a tenth of the ingest time, and queries on the fresh index run at their best.
OPTIMIZE_AFTER = 50_000
#: Ingest of at least this many documents shows a progress bar (when stderr is a terminal).
PROGRESS_MIN_DOCUMENTS = 500

#: BM25 with per-column weights (title, body, keywords); stored in the index when it is created.
RANK = "bm25(5.0, 1.0, 3.0)"
AUTOMERGE = 16

Mode = Literal["auto", "all", "any"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    root TEXT NOT NULL,
    key TEXT NOT NULL,
    hash TEXT NOT NULL,
    config TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    chunks INTEGER NOT NULL DEFAULT 0,
    UNIQUE (root, key)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL,
    line INTEGER
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5 (
    title, body, keywords, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# The top k by BM25 inside FTS5 (its rank shortcut sorts once and computes snippets only for the k rows
# returned), then the join for source and line on those k rows only.
_QUERY = """
SELECT s.id, s.title, s.snip, s.rank, d.key, c.line, s.body
FROM (
    SELECT rowid AS id, title, body, rank, snippet(chunks_fts, 1, ?, ?, '…', ?) AS snip
    FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?
) AS s
JOIN chunks AS c ON c.id = s.id
JOIN documents AS d ON d.id = c.doc_id
ORDER BY s.rank
"""

_fts5_checked = False


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the base class cannot)."""


def check_fts5() -> None:
    """Fail early, with what to do, when this Python's SQLite lacks FTS5 (a build option of SQLite)."""
    global _fts5_checked
    if _fts5_checked:
        return
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE probe USING fts5(x)")
    except sqlite3.OperationalError as exc:
        raise FTS5UnavailableError(
            f"this Python's sqlite3 (SQLite {sqlite3.sqlite_version}, {sys.executable}) was built without FTS5 "
            f"({exc}). Use a Python whose SQLite has FTS5 enabled (python.org installers, Debian/Ubuntu python3, "
            "conda and uv-managed Pythons all have it), or rebuild SQLite with -DSQLITE_ENABLE_FTS5."
        ) from exc
    finally:
        conn.close()
    _fts5_checked = True


@dataclass
class IngestReport:
    """What one ingest did. `unchanged` documents were neither re-read nor re-chunked."""

    root: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_added / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed; "
            f"{self.chunks_added} chunks written in {self.seconds:.2f} s"
        )
        return text + (f"; {len(self.skipped)} unreadable files skipped" if self.skipped else "")


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    roots: list[str]
    bytes: int


class SearchIndex:
    """A full-text index in one SQLite file: ingest folders or any `DocumentSource`s, query with BM25.

    `path` is created when missing unless `create=False` (then a missing file is an `IndexNotFoundError` that
    says how to build one). `max_chars` bounds chunk size; `markers` wrap matched terms in snippets.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        max_chars: int = DEFAULT_MAX_CHARS,
        markers: tuple[str, str] = DEFAULT_MARKERS,
        snippet_tokens: int = 24,
        read_threads: int = 4,
        label: str | None = None,
    ) -> None:
        check_fts5()
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists() and not create:
            raise IndexNotFoundError(
                f"no search index at {self.path}: build one first, e.g. `agentkit search index DIR --db {path}`"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_chars = max_chars
        self.markers = markers
        self.snippet_tokens = max(1, min(snippet_tokens, 64))
        self._label = label
        self._read_threads = read_threads
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        # Weak: a thread's connection lives in its thread-local and closes when the thread ends.
        self._readers: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._writer = self._open_writer()

    # -- connections ----------------------------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB of page cache per connection, at most
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; a crash loses at most the tail
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise SearchError(
                    f"{self.path} is a search index of schema {version}, this agentkit reads {SCHEMA_VERSION}: "
                    "delete the file and index again"
                )
            conn.executescript(_SCHEMA)
            if version == 0:
                conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('rank', ?)", (RANK,))
                # Merge b-tree segments 16 at a time instead of 4: bulk ingest runs about 1.5x faster, and
                # queries stay fast (crisismerge still bounds the segments per level).
                conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('automerge', ?)", (AUTOMERGE,))
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise SearchError(f"cannot open {self.path} as a search index: {exc}") from exc
        return conn

    def _reader(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise SearchError(f"the search index {self.path} is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.add(conn)
        return conn

    @property
    def label(self) -> str:
        """What this index holds, for tool descriptions."""
        return self._label or f"the document index {self.path.name}"

    def close(self) -> None:
        """Finish running queries, then close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        with self._readers_lock:
            for conn in list(self._readers):
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> SearchIndex:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # -- writing --------------------------------------------------------------------------------------------------

    def ingest(
        self,
        path: str | os.PathLike[str],
        *,
        json_fields: JsonFields | None = None,
        progress: bool | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        optimize: bool | None = None,
    ) -> IngestReport:
        """Index a folder (recursively; files gone since last time leave the index) or a single file (which
        joins the root of an indexed folder that contains it, else its own folder's).

        Only files whose content hash changed are re-chunked; files whose size and mtime did not change are not
        even read. Supported: .txt/.rst, .md, .html, .py, .json (records), .jsonl (records).
        """
        if self._closed:
            raise SearchError(f"the search index {self.path} is closed")
        target = Path(path).expanduser().resolve()
        if target.is_dir():
            sources: list[DocumentSource] = list(
                walk_folder(target, max_chars=self.max_chars, json_fields=json_fields, max_file_bytes=max_file_bytes)
            )
            return self.add_documents(str(target), sources, prune=True, progress=progress, optimize=optimize)
        if target.is_file():
            # A file under a folder indexed before belongs to that folder's root (no duplicate document).
            roots = [Path(r[0]) for r in self._writer.execute("SELECT DISTINCT root FROM documents")]
            root = max((r for r in roots if target.is_relative_to(r)), key=lambda r: len(r.parts), default=None)
            root = root or target.parent
            src = file_source(target, root, max_chars=self.max_chars, json_fields=json_fields)
            return self.add_documents(str(root), [src], prune=False, progress=progress, optimize=optimize)
        raise SearchError(f"nothing to index at {path}: no such file or folder")

    async def aingest(self, path: str | os.PathLike[str], **kwargs: object) -> IngestReport:
        """`ingest` on a worker thread, for use from async code."""
        return await asyncio.to_thread(self.ingest, path, **kwargs)  # type: ignore[arg-type]

    def add_documents(
        self,
        root: str,
        sources: Sequence[DocumentSource] | Iterable[DocumentSource],
        *,
        prune: bool = True,
        progress: bool | None = None,
        optimize: bool | None = None,
    ) -> IngestReport:
        """Bring the documents of `root` in line with `sources`, in bulk transactions.

        `root` names a collection (a folder path, "stdlib", an environment id). With `prune`, documents of `root`
        that are not among `sources` are removed. `optimize` merges the index afterwards (None: when at least
        OPTIMIZE_AFTER chunks were written).
        """
        report = IngestReport(root=root)
        started = time.perf_counter()
        total = len(sources) if isinstance(sources, Sequence) else None
        with self._write_lock, _progress_bar(progress, total) as advance:
            if self._closed:
                raise SearchError(f"the search index {self.path} is closed")
            conn = self._writer
            existing = {
                row[1]: row
                for row in conn.execute(
                    "SELECT id, key, hash, config, size, mtime_ns FROM documents WHERE root = ?", (root,)
                )
            }
            seen: set[str] = set()
            writer = _BulkWriter(conn)
            try:
                writer.begin()
                for src in sources:
                    seen.add(src.key)
                    try:
                        self._upsert(writer, root, src, existing.get(src.key), report)
                    except OSError as exc:
                        report.skipped.append(f"{src.key}: {exc.strerror or exc}")
                        seen.discard(src.key)
                    advance(1)
                if prune:
                    for key in existing.keys() - seen:
                        report.chunks_removed += writer.delete_document(existing[key][0])
                        report.removed += 1
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            report.chunks_added = writer.written
            if optimize or (optimize is None and report.chunks_added >= OPTIMIZE_AFTER):
                conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
            if report.chunks_added + report.chunks_removed >= COMMIT_EVERY:
                # Fold the WAL back into the database and shrink it; a big ingest leaves a WAL of its own size.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        report.seconds = time.perf_counter() - started
        return report

    def _upsert(
        self, writer: _BulkWriter, root: str, src: DocumentSource, old: tuple | None, report: IngestReport
    ) -> None:
        stamp = src.stamp()
        size, mtime = stamp if stamp is not None else (None, None)
        if old is not None and stamp is not None and old[3] == src.config and (old[4], old[5]) == stamp:
            report.unchanged += 1
            return
        content = src.content()
        digest = hashlib.blake2b(content, digest_size=16).hexdigest()
        if old is not None and old[2] == digest and old[3] == src.config:
            writer.conn.execute("UPDATE documents SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime, old[0]))
            report.unchanged += 1
            return
        chunks = src.chunks(content)
        if old is None:
            doc_id = writer.conn.execute(
                "INSERT INTO documents (root, key, hash, config, size, mtime_ns, chunks) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (root, src.key, digest, src.config, size, mtime, len(chunks)),
            ).lastrowid
            report.added += 1
        else:
            doc_id = old[0]
            report.chunks_removed += writer.delete_chunks(doc_id)
            writer.conn.execute(
                "UPDATE documents SET hash = ?, config = ?, size = ?, mtime_ns = ?, chunks = ? WHERE id = ?",
                (digest, src.config, size, mtime, len(chunks), doc_id),
            )
            report.updated += 1
        assert doc_id is not None
        writer.add(doc_id, chunks)

    def remove(self, root: str) -> int:
        """Remove every document of `root`; returns how many."""
        with self._write_lock:
            writer = _BulkWriter(self._writer)
            writer.begin()
            try:
                ids = [r[0] for r in self._writer.execute("SELECT id FROM documents WHERE root = ?", (root,))]
                for doc_id in ids:
                    writer.delete_document(doc_id)
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
        return len(ids)

    def optimize(self) -> None:
        """Merge the FTS5 b-trees into one: smaller file and faster queries after a large ingest."""
        with self._write_lock:
            self._writer.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def get_meta(self, key: str) -> str | None:
        row = self._reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock:
            self._writer.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reading --------------------------------------------------------------------------------------------------

    async def search(self, query: str, k: int = 5, *, mode: Mode = "auto") -> list[Hit]:
        """The best `k` chunks for `query`, on the index's thread pool (the event loop is never blocked).

        Any text is a valid query (see `agentkit.search.query`); no match is an empty list. `mode`: "all" ranks
        chunks containing every term, "any" ranks chunks containing at least one, "auto" (default) gives the
        "all" hits first and fills up to k with the best "any" hits.
        """
        if self._closed:
            raise SearchError(f"the search index {self.path} is closed")
        if self._executor is None:
            with self._readers_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._read_threads, thread_name_prefix="agentkit-search")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.search_sync, query, k, mode)

    def search_sync(self, query: str, k: int = 5, mode: Mode = "auto") -> list[Hit]:
        """`search` on the calling thread (each thread gets its own read connection)."""
        k = max(1, min(int(k), MAX_K))
        parsed = parse_query(query)
        if parsed.empty:
            return []
        conn = self._reader()
        if mode == "any":
            return [hit for _, hit in self._run(conn, parsed.any_of(), k)]
        strict, loose = parsed.all_of(), parsed.any_of()
        ranked = self._run(conn, strict, k)
        if mode == "all" or len(ranked) >= k or loose == strict:
            return [hit for _, hit in ranked]
        return _fill(ranked, self._run(conn, loose, k + len(ranked)), k)

    def _run(self, conn: sqlite3.Connection, expr: str | None, k: int) -> list[tuple[int, Hit]]:
        if expr is None:
            return []
        params = (*self.markers, self.snippet_tokens, expr, k)
        try:
            rows = conn.execute(_QUERY, params).fetchall()
        except sqlite3.Error as exc:
            raise SearchError(f"search failed on {self.path}: {exc}") from exc
        return [
            (rowid, Hit(title=title, source=key, snippet=snip, score=-rank, position=line, text=body))
            for rowid, title, snip, rank, key, line, body in rows
        ]

    def stats(self) -> IndexStats:
        conn = self._reader()
        documents, chunks = conn.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM documents").fetchone()
        roots = [r[0] for r in conn.execute("SELECT DISTINCT root FROM documents ORDER BY root")]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return IndexStats(documents=documents, chunks=chunks, roots=roots, bytes=size)

    def parse(self, query: str) -> ParsedQuery:
        """How `query` will be understood (for debugging a query that finds nothing)."""
        return parse_query(query)


def _fill(first: list[tuple[int, Hit]], more: list[tuple[int, Hit]], k: int) -> list[Hit]:
    seen = {rowid for rowid, _ in first}
    hits = [hit for _, hit in first]
    hits.extend(hit for rowid, hit in more if rowid not in seen)
    return hits[:k]


class _BulkWriter:
    """Batched inserts into `chunks` and `chunks_fts` inside explicit transactions, committed every COMMIT_EVERY."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.written = 0
        self._rows: list[tuple[int, int, int | None]] = []
        self._fts: list[tuple[int, str, str, str]] = []
        self._next_id = 0
        self._since_commit = 0

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now, so the next chunk id stays ours even with another writer process.
        self.conn.execute("BEGIN IMMEDIATE")
        self._next_id = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0]

    def add(self, doc_id: int, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            self._rows.append((self._next_id, doc_id, chunk.line))
            self._fts.append((self._next_id, chunk.title, chunk.text, identifier_words(chunk.title)))
            self._next_id += 1
        if len(self._rows) >= 5_000:
            self._flush()
        if self._since_commit >= COMMIT_EVERY:
            self.commit()
            self.begin()

    def _flush(self) -> None:
        if self._rows:
            self.conn.executemany("INSERT INTO chunks (id, doc_id, line) VALUES (?, ?, ?)", self._rows)
            self.conn.executemany("INSERT INTO chunks_fts (rowid, title, body, keywords) VALUES (?, ?, ?, ?)", self._fts)
            self.written += len(self._rows)
            self._since_commit += len(self._rows)
            self._rows, self._fts = [], []

    def delete_chunks(self, doc_id: int) -> int:
        cur = self.conn.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id = ?)", (doc_id,)
        )
        self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        return cur.rowcount

    def delete_document(self, doc_id: int) -> int:
        removed = self.delete_chunks(doc_id)
        self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return removed

    def commit(self) -> None:
        self._flush()
        self.conn.execute("COMMIT")
        self._since_commit = 0

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._rows, self._fts = [], []


@contextmanager
def _progress_bar(enabled: bool | None, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for large ingests (yields `advance(n)`); a no-op otherwise."""
    if enabled is None:
        enabled = total is not None and total >= PROGRESS_MIN_DOCUMENTS and sys.stderr.isatty()
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("indexing", total=total)
        yield lambda n: bar.advance(task, n)
