"""The index: every supported format, BM25 ranking on a corpus with known answers, incremental re-indexing."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from agentkit.search import IndexNotFoundError, JsonFields, SearchError, SearchIndex
from agentkit.search.chunking import Chunk

KNOWN_ANSWERS = [
    ("plinian eruption ash column", "geology/volcanoes.md", "Volcanoes › Eruption types"),
    ("how do seismometers monitor magma", "geology/volcanoes.md", "Volcanoes › Monitoring"),
    ("feed the sourdough starter", "cooking/sourdough.md", "Sourdough bread › Feeding the starter"),
    ("wild yeast lactobacilli", "cooking/sourdough.md", "Sourdough bread"),
    ("TCP handshake SYN ACK", "networking/tcp.txt", "tcp.txt"),
    ("congestion control slow start", "networking/tcp.txt", "tcp.txt"),
    ("chlorophyll absorbs light", "biology/photosynthesis.html", "Photosynthesis › Chlorophyll"),
    ("sleep exponentially longer between attempts", "code/retry.py", "code.retry.retry_with_backoff"),
    ("circuit breaker cool-down", "code/retry.py", "code.retry.CircuitBreaker"),
    ("chess opening", "data/games.jsonl", "Sicilian Defence"),
    ("surrounding territory stones", "data/games.jsonl", "Go"),
    ("gas giant storm", "data/planets.json", "Jupiter"),
]


@pytest.mark.parametrize(("query", "source", "title"), KNOWN_ANSWERS)
async def test_ranking_puts_the_known_answer_first(index: SearchIndex, query: str, source: str, title: str) -> None:
    hits = await index.search(query, k=3)
    assert hits, query
    assert (hits[0].source, hits[0].title) == (source, title)
    ranked = await index.search(query, k=5, mode="any")
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)


async def test_hits_carry_position_score_and_marked_snippet(index: SearchIndex) -> None:
    [hit] = await index.search("tiltmeters", k=1)
    assert hit.source == "geology/volcanoes.md" and hit.position == 9
    assert hit.citation == "geology/volcanoes.md:9"
    assert "**tiltmeters**" in hit.snippet and hit.score > 0
    assert hit.text.startswith("## Monitoring")
    [record] = await index.search("backgammon dice", k=1)
    assert (record.source, record.position) == ("data/games.jsonl", 3)
    [planet] = await index.search("olympus mons", k=1)
    assert (planet.title, planet.position) == ("Mars", 1)


async def test_bm25_prefers_rare_terms_and_titles(tmp_path: Path, make_corpus) -> None:
    docs = {
        "a.md": "# Notes\n\n" + "common " * 30 + "zebra",
        "b.md": "# Notes\n\n" + "common " * 31,
        "c.md": "# Zebra\n\nstriped animal of the savanna, " + "common " * 5,
    }
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(make_corpus(tmp_path / "c", docs))
        hits = await idx.search("common zebra", k=3, mode="any")
        # Both zebra documents beat the one with more "common": the rare term carries the weight.
        assert {h.source for h in hits[:2]} == {"a.md", "c.md"} and hits[2].source == "b.md"
        # A matching heading outranks a single mention deep in the text.
        assert (await idx.search("zebra", k=1))[0].source == "c.md"


async def test_auto_mode_ranks_full_matches_first_then_fills(index: SearchIndex) -> None:
    hits = await index.search("volcano chess", k=5)
    strict = await index.search("volcano chess", k=5, mode="all")
    assert strict == []
    assert {"geology/volcanoes.md", "data/games.jsonl"} <= {h.source for h in hits}
    both = await index.search("red planet volcano", k=5)
    assert both[0].title == "Mars"  # the only chunk with every word comes first


async def test_no_match_and_empty_query_are_empty_results(index: SearchIndex) -> None:
    assert await index.search("xylophone quasar") == []
    assert await index.search("   ") == []


def test_every_format_is_chunked_with_titles(index: SearchIndex) -> None:
    conn = sqlite3.connect(index.path)
    rows = conn.execute(
        "SELECT d.key, f.title FROM chunks c JOIN documents d ON d.id = c.doc_id JOIN chunks_fts f ON f.rowid = c.id"
    ).fetchall()
    conn.close()
    titles = {}
    for key, title in rows:
        titles.setdefault(key, []).append(title)
    assert titles["geology/volcanoes.md"] == ["Volcanoes", "Volcanoes › Eruption types", "Volcanoes › Monitoring"]
    assert titles["code/retry.py"] == ["code.retry", "code.retry", "code.retry.retry_with_backoff", "code.retry.CircuitBreaker"]
    assert titles["data/games.jsonl"] == ["Sicilian Defence", "Go", "Backgammon"]
    assert titles["data/planets.json"] == ["Mars", "Jupiter"]
    assert titles["biology/photosynthesis.html"] == ["Photosynthesis", "Photosynthesis › Chlorophyll"]


async def test_html_drops_scripts_styles_and_navigation(index: SearchIndex) -> None:
    for hidden in ("secretScriptWord", "chlorophyllgreen", "About"):
        assert await index.search(hidden) == [], hidden
    [hit] = await index.search('"red and blue light & reflects green"', k=1)
    assert "&amp;" not in hit.text


async def test_json_fields_choose_title_and_text(tmp_path: Path) -> None:
    rows = [{"sku": "A1", "label": "Kettle", "desc": "boils water", "notes": "ignored words"}]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(path, json_fields=JsonFields(title="label", text=("desc", "sku")))
        [hit] = await idx.search("boils", k=1)
        assert (hit.title, hit.source, hit.text) == ("Kettle", "items.jsonl", "boils water\n\nA1")
        assert await idx.search("ignored") == []
        # Changing the field choice re-chunks the file even though its bytes did not change.
        report = idx.ingest(path, json_fields=JsonFields(title="label", text=("notes",)))
        assert report.updated == 1
        assert [h.title for h in await idx.search("ignored")] == ["Kettle"]


async def test_reindex_touches_only_changed_and_drops_deleted(tmp_path: Path, corpus: Path) -> None:
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        first = idx.ingest(corpus)
        assert (first.added, first.updated, first.removed) == (7, 0, 0)
        chunks_before = idx.stats().chunks

        again = idx.ingest(corpus)
        assert (again.added, again.updated, again.unchanged, again.removed, again.chunks_added) == (0, 0, 7, 0, 0)

        (corpus / "networking/tcp.txt").write_text("UDP datagrams need no handshake at all.\n")
        (corpus / "cooking/sourdough.md").unlink()
        # Same bytes, new mtime: hashed, found unchanged, not re-chunked.
        os.utime(corpus / "data/planets.json", ns=(1, 1))
        report = idx.ingest(corpus)
        assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 5, 1)
        assert report.chunks_added == 1 and report.chunks_removed == 1 + 2

        assert await idx.search("sourdough starter") == []
        assert await idx.search("congestion", k=1) == []
        [udp] = await idx.search("datagrams", k=1)
        assert udp.source == "networking/tcp.txt"
        stats = idx.stats()
        assert stats.documents == 6 and stats.chunks == chunks_before - 3 + 1

        (corpus / "new.md").write_text("# Fresh\n\nA brand new page about quasars.\n")
        report = idx.ingest(corpus)
        assert (report.added, report.updated, report.unchanged) == (1, 0, 6)
        assert [h.source for h in await idx.search("quasars")] == ["new.md"]


async def test_single_file_ingest_does_not_prune_its_folder(tmp_path: Path, corpus: Path) -> None:
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(corpus)
        (corpus / "geology" / "volcanoes.md").write_text("# Volcanoes\n\nCalderas form when magma empties.\n")
        report = idx.ingest(corpus / "geology" / "volcanoes.md")
        assert (report.updated, report.removed) == (1, 0)  # it joins the corpus root; no sibling is pruned
        assert idx.stats().documents == 7
        assert [h.source for h in idx.search_sync("calderas")] == ["geology/volcanoes.md"]
        lone = tmp_path / "elsewhere" / "note.txt"
        lone.parent.mkdir()
        lone.write_text("calderas elsewhere")
        assert idx.ingest(lone).added == 1
        assert {h.source for h in idx.search_sync("calderas")} == {"geology/volcanoes.md", "note.txt"}


def test_index_persists_and_reopens(tmp_path: Path, corpus: Path) -> None:
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(corpus)
    with SearchIndex(tmp_path / "i.sqlite", create=False) as again:
        assert again.search_sync("lactobacilli")[0].source == "cooking/sourdough.md"
        assert again.stats().roots == [str(corpus.resolve())]


def test_missing_index_and_missing_folder_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="agentkit search index"):
        SearchIndex(tmp_path / "none.sqlite", create=False)
    with SearchIndex(tmp_path / "i.sqlite") as idx, pytest.raises(SearchError, match="no such file or folder"):
        idx.ingest(tmp_path / "does-not-exist")


async def test_a_closed_index_says_so(tmp_path: Path, corpus: Path) -> None:
    idx = SearchIndex(tmp_path / "i.sqlite")
    idx.ingest(corpus)
    assert await idx.search("volcano")
    idx.close()
    idx.close()  # idempotent
    with pytest.raises(SearchError, match="is closed"):
        await idx.search("volcano")
    for target in (corpus, corpus / "notes.txt"):
        with pytest.raises(SearchError, match="is closed"):
            idx.ingest(target)


def test_not_an_index_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SearchError, match="cannot open"):
        SearchIndex(bogus)


def test_binary_hidden_and_unknown_files_are_skipped(tmp_path: Path, make_corpus) -> None:
    root = tmp_path / "c"
    make_corpus(root, {"ok.txt": "visible words", ".hidden/secret.md": "hidden words", "x.bin": "binary words"})
    (root / "nul.txt").write_bytes(b"binary\x00words")
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(root)
        assert [h.source for h in idx.search_sync("words")] == ["ok.txt"]


def test_add_documents_from_any_source(tmp_path: Path) -> None:
    class Note:
        config = "note-v1"

        def __init__(self, key: str, text: str) -> None:
            self.key, self.text = key, text

        def stamp(self) -> None:
            return None

        def content(self) -> bytes:
            return self.text.encode()

        def chunks(self, content: bytes) -> list[Chunk]:
            return [Chunk(self.key, content.decode(), None)]

    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.add_documents("env-7", [Note("n1", "alpha beta"), Note("n2", "gamma")])
        assert idx.add_documents("env-7", [Note("n1", "alpha beta")]).removed == 1
        assert [(h.source, h.position) for h in idx.search_sync("alpha")] == [("n1", None)]
        assert idx.remove("env-7") == 1 and idx.stats().documents == 0


def test_a_failed_ingest_leaves_the_index_as_it_was(tmp_path: Path, corpus: Path) -> None:
    class Broken:
        key, config = "boom", "x"

        def stamp(self) -> None:
            return None

        def content(self) -> bytes:
            return b"x"

        def chunks(self, content: bytes) -> list[Chunk]:
            raise RuntimeError("chunker bug")

    with SearchIndex(tmp_path / "i.sqlite") as idx:
        idx.ingest(corpus)
        before = idx.stats()
        with pytest.raises(RuntimeError):
            idx.add_documents(str(corpus.resolve()), [Broken()], prune=True)
        assert idx.stats() == before


def test_progress_bar_on_request(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SearchIndex(tmp_path / "i.sqlite") as idx:
        report = idx.ingest(corpus, progress=True)
    assert report.added == 7
    assert capsys.readouterr().out == ""  # the bar goes to stderr, never into stdout
