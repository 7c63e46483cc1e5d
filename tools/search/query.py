"""Turn any user or model text into a safe FTS5 MATCH expression.

FTS5 has its own query language (AND/OR/NOT, NEAR, `column:` filters, `^`, `+`, `*`, parentheses, quoted strings).
Text from a person or a model is not written in it: passed through raw, `C++`, `"unbalanced`, `foo:bar` or
`(` are syntax errors. So user text is never passed through. Terms are extracted as runs of letters and digits
(the characters SQLite's unicode61 tokenizer keeps), and each clause is re-emitted as a double-quoted FTS5 string,
which FTS5 only ever reads as a literal phrase. A small, forgiving subset of familiar syntax survives:

- `"exact phrase"` (balanced quotes) is a phrase; `os.path.join` is the phrase `os path join`, as it is indexed;
- `word*` is a prefix query when the word has at least three characters (shorter prefixes match half the index);
- `-word` excludes, when there is something left to include;
- common English stop words are dropped unless nothing else is left, so "how do I parse json" searches
  `parse json`.

Everything else (operators, brackets, emoji, control characters, lone surrogates) is just a separator, and an
empty or all-separator query parses to nothing, which the index answers with no hits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Letters and digits; the underscore is a separator for unicode61, so it is one here too.
_WORD = re.compile(r"[^\W_]+")
# A balanced "quoted phrase", or a run of non-space characters.
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')

MAX_CLAUSES = 16
MIN_PREFIX_CHARS = 3

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself yourselves""".split()
)


@dataclass(frozen=True, slots=True)
class Clause:
    """One term or phrase (several words in order), optionally a prefix on its last word.

    `quoted` phrases came in quotes; unquoted ones came from punctuation (`os.path.join`) and are split into
    their words when the query is relaxed to "any".
    """

    words: tuple[str, ...]
    prefix: bool = False
    quoted: bool = False

    def fts(self) -> str:
        """The clause as an FTS5 string literal; words hold only letters and digits, so no quoting is needed."""
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")

    def loosened(self) -> list[Clause]:
        """Each word on its own, unless the user quoted the phrase."""
        if self.quoted or len(self.words) == 1:
            return [self]
        *head, last = self.words
        return [Clause((w,)) for w in head] + [Clause((last,), self.prefix)]

    @property
    def is_stopword(self) -> bool:
        return len(self.words) == 1 and not self.prefix and self.words[0].lower() in STOPWORDS


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """Clauses to include (at least one must match) and to exclude (none may match)."""

    include: tuple[Clause, ...] = ()
    exclude: tuple[Clause, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.include

    @property
    def terms(self) -> list[str]:
        """The included words, for highlighting text that FTS5 did not produce (web snippets)."""
        return [w for c in self.include for w in c.words]

    def all_of(self) -> str | None:
        """An FTS5 expression matching chunks that contain every included clause."""
        return self._expr(" AND ")

    def any_of(self) -> str | None:
        """An FTS5 expression matching chunks that contain at least one included clause (or unquoted word)."""
        return self._expr(" OR ", loose=True)

    def _expr(self, joiner: str, loose: bool = False) -> str | None:
        if not self.include:
            return None
        clauses = _dedupe([part for c in self.include for part in c.loosened()]) if loose else self.include
        expr = "(" + joiner.join(c.fts() for c in clauses) + ")"
        if self.exclude:
            expr += " NOT (" + " OR ".join(c.fts() for c in self.exclude) + ")"
        return expr


def parse_query(text: str) -> ParsedQuery:
    """Parse free text into clauses; never raises, whatever `text` holds."""
    include: list[Clause] = []
    exclude: list[Clause] = []
    for match in _TOKEN.finditer(text if isinstance(text, str) else str(text)):
        phrase, raw = match.group(1), match.group(2)
        if phrase is not None:
            words = tuple(_WORD.findall(phrase))
            if words:
                include.append(Clause(words, quoted=True))
            continue
        negated = len(raw) > 1 and raw[0] == "-" and raw[1] != "-"
        words = tuple(_WORD.findall(raw))
        if not words:
            continue
        prefix = raw.endswith("*") and len(words[-1]) >= MIN_PREFIX_CHARS and bool(_WORD.search(raw[-2:-1]))
        (exclude if negated else include).append(Clause(words, prefix))
    if not include:  # "-foo" alone means foo: exclusion needs something to exclude from
        include, exclude = exclude, []
    content = [c for c in include if not c.is_stopword]
    return ParsedQuery(tuple(_dedupe(content or include))[:MAX_CLAUSES], tuple(_dedupe(exclude))[:MAX_CLAUSES])


def _dedupe(clauses: list[Clause] | tuple[Clause, ...]) -> list[Clause]:
    seen: set[tuple[tuple[str, ...], bool]] = set()
    out = []
    for c in clauses:
        key = (tuple(w.casefold() for w in c.words), c.prefix)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
