"""`agentkit search index|query|stats`, driven through the argparse group the package registers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit.search.cli import register


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agentkit")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_index_query_stats(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.sqlite")
    assert run("search", "index", str(corpus), "--db", db) == 0
    assert "7 added" in capsys.readouterr().out

    assert run("search", "index", str(corpus), "--db", db) == 0
    assert "0 added, 0 updated, 7 unchanged" in capsys.readouterr().out

    assert run("search", "query", "tiltmeters magma", "--db", db, "-k", "2") == 0
    out = capsys.readouterr().out
    assert "1. Volcanoes › Monitoring" in out and "geology/volcanoes.md:9" in out
    assert "\x02" not in out and "\x03" not in out

    assert run("search", "query", "olympus", "--db", db, "--json") == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["title"] == "Mars" and "**Olympus**" in record["snippet"]

    assert run("search", "stats", "--db", db) == 0
    assert "7 documents" in capsys.readouterr().out


def test_json_field_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"head": "Kettle", "desc": "boils water", "other": "hidden"}) + "\n")
    db = str(tmp_path / "rows.sqlite")
    assert run("search", "index", str(data), "--db", db, "--json-title", "head", "--json-text", "desc") == 0
    capsys.readouterr()
    assert run("search", "query", "boils", "--db", db, "--json") == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Kettle"
    assert run("search", "query", "hidden", "--db", db) == 0
    assert "no results" in capsys.readouterr().out


def test_errors_exit_2_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("search", "query", "x", "--db", str(tmp_path / "none.sqlite")) == 2
    assert "agentkit search index" in capsys.readouterr().err
    assert run("search", "index", str(tmp_path / "nowhere"), "--db", str(tmp_path / "a.sqlite")) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_query_the_web(searxng: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("search", "query", "hello world", "--web", searxng.url, "-k", "1") == 0
    out = capsys.readouterr().out
    assert "1. Result 0 about hello world" in out and "https://example.org/0" in out
    searxng.then(403, "Forbidden")
    assert run("search", "query", "hello", "--web", searxng.url) == 2
    assert "search.formats" in capsys.readouterr().err


def test_query_defaults_to_the_stdlib(
    stdlib_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTKIT_CACHE_DIR", str(stdlib_cache))
    assert run("search", "query", "math sqrt", "-k", "1") == 0
    assert "math.sqrt" in capsys.readouterr().out
