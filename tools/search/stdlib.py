"""The default corpus: the installed Python's standard library documentation, from its own docstrings.

Useful offline with no download: every public module, class, function and method of the stdlib with its
signature and docstring, plus the language reference topics that `help("for")` shows (`pydoc_data.topics`).
Pure-Python modules are read with `ast` (never imported: importing `antigravity` opens a browser, `this`
prints); C modules (`math`, `itertools`, `builtins`...) are imported, which has no side effects, and read with
`inspect`. The index is built on first use into a cache folder and reused; building it takes seconds.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from agentkit.search.base import Hit
from agentkit.search.chunking import DEFAULT_MAX_CHARS, Chunk, chunk_text
from agentkit.search.index import RANK, SCHEMA_VERSION, SearchIndex
from agentkit.search.sources import CHUNKER_VERSION, FileBacked, decode

ROOT = "stdlib"
_SKIP_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip",
     "__pycache__", "__phello__", "tkinter", "pydoc_data"}
)
#: Private modules whose docstrings are the public documentation of a public module.
_PY_ALIASES = {"_pydecimal": "decimal", "_pyio": "io", "_collections_abc": "collections.abc"}
#: C modules read by import: public ones, and private ones behind a public name.
_C_ALIASES = {
    "_collections": "collections", "_codecs": "codecs", "_contextvars": "contextvars", "_csv": "csv",
    "_queue": "queue", "_signal": "signal", "_socket": "socket", "_sqlite3": "sqlite3", "_struct": "struct",
    "_thread": "_thread", "_tracemalloc": "tracemalloc", "_weakref": "weakref",
}
_C_SKIP = frozenset({"readline", "nis", "spwd", "ossaudiodev", "audioop", "posix", "nt", "winreg", "msvcrt"})


def default_cache_dir() -> Path:
    """`$AGENTKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/agentkit`, else `~/.cache/agentkit`."""
    if os.environ.get("AGENTKIT_CACHE_DIR"):
        return Path(os.environ["AGENTKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "agentkit"


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def cache_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where this interpreter's stdlib index lives: one file per Python version and stdlib location."""
    key = f"{sys.version}|{stdlib_dir()}|{CHUNKER_VERSION}|{DEFAULT_MAX_CHARS}|{SCHEMA_VERSION}|{RANK}"
    digest = hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
    name = f"stdlib-py{sys.version_info.major}.{sys.version_info.minor}-{digest}.sqlite"
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "search"
    return folder / name


def label() -> str:
    return f"the Python {sys.version_info.major}.{sys.version_info.minor} standard library documentation"


# --------------------------------------------------------------------------------------------------------------------
# Sources


@dataclass
class _PyModule(FileBacked):
    """A pure-Python stdlib module, read with `ast`: docstrings of its public names."""

    path: Path
    key: str
    module: str
    config: str = f"stdlib-py:{CHUNKER_VERSION}"

    def chunks(self, content: bytes) -> list[Chunk]:
        text = decode(content)
        try:
            tree = ast.parse(text or "")
        except (SyntaxError, ValueError):
            return []
        chunks: list[Chunk] = []
        doc = ast.get_docstring(tree)
        if doc:
            chunks.extend(chunk_text(doc, self.module, DEFAULT_MAX_CHARS, first_line=1))
        for node in tree.body:
            chunks.extend(_documented(node, self.module))
        return chunks


def _documented(node: ast.stmt, prefix: str) -> Iterator[Chunk]:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name.startswith("_"):
        return
    name = f"{prefix}.{node.name}"
    doc = ast.get_docstring(node)
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        head = f"class {name}({bases})" if bases else f"class {name}"
    else:
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        head = f"{name}({ast.unparse(node.args)}){returns}"
    if doc:
        yield from _api_chunks(name, head, doc, node.lineno)
    if isinstance(node, ast.ClassDef):
        for child in node.body:
            yield from _documented(child, name)


def _api_chunks(name: str, head: str, doc: str, line: int | None) -> list[Chunk]:
    """The signature line heads the first chunk; a long docstring continues in more chunks of the same title.

    `line` is None for C objects: they have no source line, and a made-up one would be a wrong citation.
    """
    chunks = chunk_text(f"{head}\n\n{inspect.cleandoc(doc)}", name, DEFAULT_MAX_CHARS, first_line=line or 1)
    return chunks if line is not None else [dataclasses.replace(c, line=None) for c in chunks]


@dataclass
class _Topics(FileBacked):
    """`pydoc_data.topics`: the language reference sections that `help("with")` prints."""

    path: Path
    key: str = "pydoc_data/topics.py"
    config: str = f"stdlib-topics:{CHUNKER_VERSION}"

    def chunks(self, content: bytes) -> list[Chunk]:
        try:
            tree = ast.parse(decode(content) or "")
            topics = ast.literal_eval(tree.body[-1].value)  # type: ignore[attr-defined]
        except (SyntaxError, ValueError, AttributeError, IndexError):
            return []
        chunks: list[Chunk] = []
        for topic, text in sorted(topics.items()):
            chunks.extend(chunk_text(text, f"Language reference: {topic}", DEFAULT_MAX_CHARS))
        return chunks


@dataclass
class _CModule:
    """A C module, imported and read with `inspect`."""

    name: str
    public: str
    config: str = f"stdlib-c:{CHUNKER_VERSION}"

    @property
    def key(self) -> str:
        return f"built-in/{self.public}"

    def stamp(self) -> tuple[int, int] | None:
        return None

    def _module(self) -> ModuleType:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(self.name)

    def content(self) -> bytes:
        return f"{sys.version}|{self.name}".encode()

    def chunks(self, content: bytes) -> list[Chunk]:
        module = self._module()
        doc = inspect.getdoc(module)
        chunks = [dataclasses.replace(c, line=None) for c in chunk_text(doc, self.public)] if doc else []
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) not in (self.name, self.public):
                continue
            chunks.extend(_c_object_chunks(f"{self.public}.{attr}", obj))
        return chunks


def _c_object_chunks(name: str, obj: object) -> list[Chunk]:
    if not (inspect.isclass(obj) or callable(obj)):
        return []
    doc = inspect.getdoc(obj)
    chunks = _api_chunks(name, _c_head(name, obj), doc, None) if doc else []
    if inspect.isclass(obj):
        for attr, member in sorted(vars(obj).items()):
            member_doc = getattr(member, "__doc__", None)
            if attr.startswith("_") or not isinstance(member_doc, str) or not member_doc.strip():
                continue
            member_name = f"{name}.{attr}"
            chunks.extend(_api_chunks(member_name, _c_head(member_name, member), member_doc, None))
    return chunks


def _c_head(name: str, obj: object) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"class {name}" if inspect.isclass(obj) else name


def stdlib_sources() -> list[_PyModule | _Topics | _CModule]:
    """Every document of the stdlib corpus, pure-Python modules first."""
    base = stdlib_dir()
    sources: list[_PyModule | _Topics | _CModule] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(("config-", ".")))
        for fname in sorted(filenames):
            if not fname.endswith(".py"):
                continue
            path = Path(dirpath, fname)
            key = path.relative_to(base).as_posix()
            module = key[:-3].replace("/", ".").removesuffix(".__init__")
            module = _PY_ALIASES.get(module, module)
            if any(part.startswith("_") for part in module.split(".")) and module not in _PY_ALIASES.values():
                continue
            sources.append(_PyModule(path, key, module))
    topics = base / "pydoc_data" / "topics.py"
    if topics.is_file():
        sources.append(_Topics(topics))
    c_names = {n: n for n in sorted(sys.stdlib_module_names) if not n.startswith("_") and n not in _C_SKIP}
    c_names.update(_C_ALIASES)
    for name, public in sorted(c_names.items()):
        origin = _origin(name)
        if origin == "built-in" or (origin or "").endswith((".so", ".pyd")):
            sources.append(_CModule(name, public))
    return sources


def _origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec else None


# --------------------------------------------------------------------------------------------------------------------
# The cached index

_build_lock = threading.Lock()


def stdlib_index(cache_dir: str | os.PathLike[str] | None = None, *, rebuild: bool = False) -> SearchIndex:
    """The stdlib index, built on first use into the cache and reused after (blocking; seconds the first time).

    The build writes a temporary file and renames it into place, so a concurrent reader or a second process
    never sees a half-built index.
    """
    path = cache_path(cache_dir)
    with _build_lock:
        if rebuild or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                with SearchIndex(tmp) as index:
                    index.add_documents(ROOT, stdlib_sources(), prune=True)
                    index.optimize()
                os.replace(tmp, path)
            finally:
                for leftover in tmp.parent.glob(tmp.name + "*"):
                    leftover.unlink(missing_ok=True)
    return SearchIndex(path, create=False, label=label())


class StdlibCorpus:
    """A `SearchProvider` over the stdlib index that builds it on the first query, off the event loop."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._cache_dir = cache_dir
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return label()

    def index(self) -> SearchIndex:
        """The underlying index (built now if this is the first use)."""
        with self._lock:
            if self._index is None:
                self._index = stdlib_index(self._cache_dir)
            return self._index

    async def search(self, query: str, k: int = 5) -> list[Hit]:
        index = self._index if self._index is not None else await asyncio.to_thread(self.index)
        return await index.search(query, k)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
