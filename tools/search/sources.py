"""Where documents come from: files in a folder (by suffix), or anything else that can say what it contains.

The index asks a `DocumentSource` three things, cheapest first, so that re-indexing touches only what changed:
its `stamp` (size and mtime: unchanged means skip without reading), its `content` (hashed: unchanged means skip
without chunking) and finally its `chunks`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agentkit.search.chunking import (
    DEFAULT_MAX_CHARS,
    Chunk,
    JsonFields,
    chunk_html,
    chunk_json,
    chunk_jsonl,
    chunk_markdown,
    chunk_python,
    chunk_text,
)

#: Bump when chunking changes in a way that should re-chunk every stored document.
CHUNKER_VERSION = 1

KINDS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".html": "html",
    ".htm": "html",
    ".py": "python",
    ".pyi": "python",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024


class DocumentSource(Protocol):
    """One document: `key` is unique within its root and is what hits show as their source."""

    @property
    def key(self) -> str: ...

    @property
    def config(self) -> str:
        """A fingerprint of how the document is chunked; a change re-chunks it even if its content did not."""
        ...

    def stamp(self) -> tuple[int, int] | None:
        """(size, mtime_ns) when cheap to know; None means always read and hash."""
        ...

    def content(self) -> bytes:
        """The bytes whose hash decides whether the document changed."""
        ...

    def chunks(self, content: bytes) -> list[Chunk]: ...


def decode(content: bytes) -> str | None:
    """UTF-8 text (undecodable bytes replaced), or None for binary files (NUL bytes near the start)."""
    if b"\x00" in content[:8192]:
        return None
    return content.decode("utf-8", errors="replace").removeprefix("\ufeff")


class FileBacked:
    """For sources that are one file: the stamp comes from `stat`, the content is the file's bytes."""

    path: Path

    def stamp(self) -> tuple[int, int] | None:
        st = self.path.stat()
        return st.st_size, st.st_mtime_ns

    def content(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class FileSource(FileBacked):
    """A file in an indexed folder, chunked according to its suffix."""

    path: Path
    key: str
    kind: str
    max_chars: int = DEFAULT_MAX_CHARS
    json_fields: JsonFields = field(default_factory=JsonFields)

    @property
    def config(self) -> str:
        extra = self.json_fields.fingerprint() if self.kind in ("json", "jsonl") else ""
        return f"v{CHUNKER_VERSION}:{self.kind}:{self.max_chars}:{extra}"

    def chunks(self, content: bytes) -> list[Chunk]:
        text = decode(content)
        if text is None:
            return []
        return _CHUNKERS[self.kind](self, text)


def _title_of(src: FileSource) -> str:
    return src.path.name


_CHUNKERS: dict[str, Callable[[FileSource, str], list[Chunk]]] = {
    "text": lambda s, t: chunk_text(t, _title_of(s), s.max_chars),
    "markdown": lambda s, t: chunk_markdown(t, _title_of(s), s.max_chars),
    "html": lambda s, t: chunk_html(t, _title_of(s), s.max_chars),
    "python": lambda s, t: chunk_python(t, _module_name(s.key), s.max_chars),
    "json": lambda s, t: chunk_json(t, _title_of(s), s.json_fields, s.max_chars),
    "jsonl": lambda s, t: chunk_jsonl(t, _title_of(s), s.json_fields, s.max_chars),
}


def _module_name(key: str) -> str:
    """`pkg/mod.py` -> `pkg.mod`; `pkg/__init__.py` -> `pkg`."""
    parts = key.rsplit(".", 1)[0].split("/")
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def walk_folder(
    root: Path,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    json_fields: JsonFields | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Iterator[FileSource]:
    """Every indexable file under `root`, in a stable order.

    Hidden files and folders (`.git`, `.venv`), caches and dependency folders are skipped, symlinks are not
    followed (no loops, nothing outside the folder), and files over `max_file_bytes` are left out.
    """
    fields = json_fields or JsonFields()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            kind = KINDS.get(os.path.splitext(name)[1].lower())
            if kind is None or name.startswith("."):
                continue
            path = Path(dirpath, name)
            try:
                if path.is_symlink() or path.stat().st_size > max_file_bytes:
                    continue
            except OSError:
                continue
            yield FileSource(path, path.relative_to(root).as_posix(), kind, max_chars, fields)


def file_source(
    path: Path, root: Path, *, max_chars: int = DEFAULT_MAX_CHARS, json_fields: JsonFields | None = None
) -> FileSource:
    """A single file, indexed as if it were found under `root`; unknown suffixes are read as plain text."""
    kind = KINDS.get(path.suffix.lower(), "text")
    return FileSource(path, path.relative_to(root).as_posix(), kind, max_chars, json_fields or JsonFields())
