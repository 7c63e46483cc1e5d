"""What every search backend returns and promises: ranked `Hit`s from `await provider.search(query, k)`.

The local index and the web provider both satisfy `SearchProvider`, so the agent-facing tool, the CLI and the
environments never care which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Default markers around matched terms in snippets; plain text a model reads as emphasis.
DEFAULT_MARKERS: tuple[str, str] = ("**", "**")


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked result.

    `source` is a path relative to the indexed folder (or a URL for web results); `position` is the 1-based line
    where the chunk starts (for JSON arrays, the 1-based record number; None for web results). `score` is
    higher-is-better within one result list (BM25 for the index, the engine's score for the web) and is not
    comparable across queries. `snippet` is a short excerpt with the matched terms between markers; `text` is
    the whole chunk.
    """

    title: str
    source: str
    snippet: str
    score: float
    position: int | None = None
    text: str = ""

    @property
    def citation(self) -> str:
        """`source:position`, or just `source` when there is no position: how a model should cite the hit."""
        return f"{self.source}:{self.position}" if self.position is not None else self.source


@runtime_checkable
class SearchProvider(Protocol):
    """Anything that answers a free-text query with ranked hits; `label` says what is searched (for prompts)."""

    @property
    def label(self) -> str: ...

    async def search(self, query: str, k: int = 5) -> list[Hit]: ...
