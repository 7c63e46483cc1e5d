"""Split documents into chunks a search hit can point at: by headings, then paragraphs, with start lines.

A chunk is the unit of ranking and of what a model reads back, so it should be one idea: a Markdown section, a
Python function, a JSON record. Long sections are packed paragraph by paragraph up to `max_chars`; a paragraph
that alone exceeds it is cut at sentence or word boundaries. Every chunk remembers the 1-based line it starts
on, so a hit can be cited as `path:line`.
"""

from __future__ import annotations

import ast
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

DEFAULT_MAX_CHARS = 1200
TITLE_SEPARATOR = " › "


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: its title (heading path, qualified name...), text and 1-based start position."""

    title: str
    text: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class JsonFields:
    """Which fields of JSON/JSONL records to index.

    `title`: the field shown as the hit's title (default: the first of title/name/id that a record has).
    `text`: the fields whose values are indexed, in order (default: every other string-valued field).
    """

    title: str | None = None
    text: tuple[str, ...] | None = None

    def fingerprint(self) -> str:
        return json.dumps([self.title, list(self.text) if self.text is not None else None])


_CAMEL = re.compile(r"\b(?=\w*[a-z])(?=\w*[A-Z])\w*[a-z][A-Z]\w*|\b[A-Z]{2,}[a-z]\w*")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_words(title: str) -> str:
    """The words inside CamelCase identifiers of `title` ("ThreadPoolExecutor" -> "Thread Pool Executor").

    The tokenizer keeps `ThreadPoolExecutor` as one token, so without this a search for "thread pool executor"
    would miss it. Snake_case needs nothing: the underscore already separates words.
    """
    if title.islower() or title.isupper() or not any(c.isupper() for c in title):
        return ""  # the common case (headings, file names, snake_case): nothing to split, and fast
    return " ".join(" ".join(_CAMEL_PART.findall(m.group(0))) for m in _CAMEL.finditer(title))


# --------------------------------------------------------------------------------------------------------------------
# Paragraphs and packing


def paragraphs(text: str, first_line: int = 1) -> Iterator[tuple[str, int]]:
    """Blank-line separated paragraphs with the line each starts on."""
    start: int | None = None
    buf: list[str] = []
    for offset, line in enumerate(text.splitlines()):
        if line.strip():
            if start is None:
                start = first_line + offset
            buf.append(line.rstrip())
        elif buf:
            yield "\n".join(buf), start  # type: ignore[misc]
            buf, start = [], None
    if buf:
        yield "\n".join(buf), start  # type: ignore[misc]


_BREAKS = (re.compile(r"(?<=[.!?])\s+"), re.compile(r"\n"), re.compile(r"\s+"))


def _split_long(text: str, max_chars: int) -> list[str]:
    """Cut `text` into pieces of at most `max_chars`, preferring sentence ends, then lines, then spaces."""
    pieces: list[str] = []
    while len(text) > max_chars:
        window = text[: max_chars + 1]
        cut = -1
        for pattern in _BREAKS:
            ends = [m.start() for m in pattern.finditer(window) if m.start() >= max_chars // 3]
            if ends:
                cut = ends[-1]
                break
        if cut <= 0:
            cut = max_chars
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text.strip():
        pieces.append(text)
    return pieces


def pack(paras: Iterable[tuple[str, int]], title: str, max_chars: int) -> list[Chunk]:
    """Greedily join consecutive paragraphs into chunks of at most `max_chars` characters."""
    chunks: list[Chunk] = []
    buf: list[str] = []
    size = 0
    start = 1
    for para, line in paras:
        if buf and size + len(para) + 2 > max_chars:
            chunks.append(Chunk(title, "\n\n".join(buf), start))
            buf, size = [], 0
        if len(para) > max_chars:
            chunks.extend(Chunk(title, piece, line) for piece in _split_long(para, max_chars))
            continue
        if not buf:
            start = line
        buf.append(para)
        size += len(para) + 2
    if buf:
        chunks.append(Chunk(title, "\n\n".join(buf), start))
    return chunks


def chunk_text(text: str, title: str, max_chars: int = DEFAULT_MAX_CHARS, first_line: int = 1) -> list[Chunk]:
    """Plain text: paragraphs packed into chunks, all titled `title`."""
    return pack(paragraphs(text, first_line), title, max_chars)


# --------------------------------------------------------------------------------------------------------------------
# Markdown

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def chunk_markdown(text: str, title: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Markdown: one section per ATX heading (not inside code fences), titled by its heading path."""
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    section: list[str] = []
    section_line = 1
    fence: str | None = None

    def flush() -> None:
        heading = TITLE_SEPARATOR.join(h for _, h in path) or title
        chunks.extend(chunk_text("\n".join(section), heading, max_chars, section_line))

    for number, line in enumerate(text.splitlines(), start=1):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
        heading = None if fence is not None else _HEADING.match(line)
        if heading is None:
            section.append(line)
            continue
        flush()
        level = len(heading.group(1))
        path = [(lv, h) for lv, h in path if lv < level] + [(level, heading.group(2).strip())]
        # The heading line itself opens the section, so its words are in the text as well as the title.
        section, section_line = [line], number
    flush()
    return chunks


# --------------------------------------------------------------------------------------------------------------------
# HTML

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "nav", "iframe", "object"})
_BLOCK_TAGS = frozenset(
    """p div section article main header footer aside ul ol li dl dt dd table tr td th thead tbody blockquote
    pre figure figcaption form fieldset address hr details summary""".split()
)
_HEADINGS = {f"h{i}": i for i in range(1, 7)}


class _HTMLToMarkdown(HTMLParser):
    """Visible text of an HTML page as Markdown-ish text: headings become `#` lines, blocks become paragraphs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _HEADINGS:
            self.out.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n")
            self._pre += tag == "pre"
        elif tag == "br":
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _HEADINGS or tag in _BLOCK_TAGS:
            self.out.append("\n\n")
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.out.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> tuple[str, str]:
    """(page title, visible text with headings as Markdown `#` lines)."""
    parser = _HTMLToMarkdown()
    parser.feed(source)
    parser.close()
    text = re.sub(r"[ \t]+\n", "\n", "".join(parser.out))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return html.unescape(parser.title).strip(), text


def chunk_html(source: str, title: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """HTML: scripts, styles and navigation dropped, then sections by heading like Markdown.

    Positions refer to lines of the extracted text, not of the HTML source (markup has no stable lines).
    """
    page_title, text = html_to_text(source)
    return chunk_markdown(text, page_title or title, max_chars)


# --------------------------------------------------------------------------------------------------------------------
# Python source


def chunk_python(source: str, module: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Python: the module docstring, then one chunk per top-level function or class (methods when a class is long).

    Titles are qualified names (`pkg.mod.func`, `pkg.mod.Class.method`), which is what people search for.
    Source that does not parse is indexed as plain text.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return chunk_text(source, module, max_chars)
    lines = source.splitlines()
    chunks: list[Chunk] = []
    doc = ast.get_docstring(tree)
    if doc:
        chunks.extend(chunk_text(doc, module, max_chars, first_line=1))
    loose: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            chunks.extend(_code_chunks(loose, lines, module, max_chars))
            loose = []
            chunks.extend(_definition_chunks(node, lines, f"{module}.{node.name}", max_chars))
        elif not (node is tree.body[0] and doc):
            loose.append(node)
    chunks.extend(_code_chunks(loose, lines, module, max_chars))
    return chunks


def _span(node: ast.stmt, lines: list[str]) -> tuple[str, int]:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    last = node.end_lineno or node.lineno
    return "\n".join(lines[first - 1 : last]), first


def _code_chunks(nodes: list[ast.stmt], lines: list[str], title: str, max_chars: int) -> list[Chunk]:
    if not nodes:
        return []
    first = _span(nodes[0], lines)[1]
    last = nodes[-1].end_lineno or nodes[-1].lineno
    return chunk_text("\n".join(lines[first - 1 : last]), title, max_chars, first_line=first)


def _definition_chunks(node: ast.stmt, lines: list[str], title: str, max_chars: int) -> list[Chunk]:
    text, first = _span(node, lines)
    if len(text) <= max_chars or not isinstance(node, ast.ClassDef):
        return chunk_text(text, title, max_chars, first_line=first)
    # A long class: its header (decorators, signature, docstring, attributes) then each method on its own.
    methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    header_end = (_span(methods[0], lines)[1] - 1) if methods else (node.end_lineno or node.lineno)
    chunks = chunk_text("\n".join(lines[first - 1 : header_end]), title, max_chars, first_line=first)
    for method in methods:
        chunks.extend(_definition_chunks(method, lines, f"{title}.{method.name}", max_chars))
    return chunks


# --------------------------------------------------------------------------------------------------------------------
# JSON and JSONL records

_TITLE_FIELDS = ("title", "name", "id")


def record_chunks(
    record: object, position: int, fallback_title: str, fields: JsonFields, max_chars: int
) -> list[Chunk]:
    """One JSON record: its title field and the chosen text fields, split if long."""
    if not isinstance(record, dict):
        text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
        return [Chunk(fallback_title, piece, position) for piece in _split_long(text, max_chars)]
    title_key = fields.title or next((f for f in _TITLE_FIELDS if f in record), None)
    title = _as_text(record.get(title_key)) if title_key else ""
    keys = fields.text if fields.text is not None else [
        k for k, v in record.items() if k != title_key and isinstance(v, str)
    ]
    text = "\n\n".join(t for t in (_as_text(record.get(k)) for k in keys) if t)
    if not text.strip():
        return []
    if len(text) <= max_chars:  # the common case, kept cheap for bulk JSONL ingest
        return [Chunk(title or fallback_title, text, position)]
    return [Chunk(title or fallback_title, piece, position) for piece in _split_long(text, max_chars)]


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def chunk_jsonl(text: str, title: str, fields: JsonFields, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """JSONL: one record per line; the position is the line number. Lines that are not JSON are skipped."""
    chunks: list[Chunk] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        chunks.extend(record_chunks(record, number, f"{title} #{number}", fields, max_chars))
    return chunks


def chunk_json(text: str, title: str, fields: JsonFields, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """JSON: an array of records (position = 1-based record number) or one record. Invalid JSON is plain text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return chunk_text(text, title, max_chars)
    records = data if isinstance(data, list) else [data]
    chunks: list[Chunk] = []
    for number, record in enumerate(records, start=1):
        chunks.extend(record_chunks(record, number, f"{title} #{number}", fields, max_chars))
    return chunks
