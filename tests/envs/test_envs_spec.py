"""JSONL round trip, schema versioning, bad lines reported with their number, and the verifier's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.envs.errors import SpecError
from agentkit.envs.spec import (
    SCHEMA_VERSION,
    AnswerCheck,
    LineError,
    TaskRecord,
    Verifier,
    canonical_json,
    iter_jsonl,
    numbers_in,
    write_jsonl,
)


def test_jsonl_round_trip_is_lossless(task_set: list[TaskRecord], tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    assert write_jsonl(path, task_set) == len(task_set)
    back = [item for _, item in iter_jsonl(path)]
    assert all(isinstance(r, TaskRecord) for r in back)
    assert [r.to_json() for r in back] == [r.to_json() for r in task_set]  # type: ignore[union-attr]
    assert path.read_text().count("\n") == len(task_set)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["version"] == SCHEMA_VERSION
    assert set(first) == {"version", "task", "environment", "solution", "verifier", "meta"}


def test_to_json_is_canonical(task_set: list[TaskRecord]) -> None:
    for rec in task_set[:20]:
        assert rec.to_json() == canonical_json(rec.to_dict())


def test_bad_lines_are_reported_by_number_and_skipped(task_set: list[TaskRecord], tmp_path: Path) -> None:
    good = [r.to_json() for r in task_set[:3]]
    wrong_version = json.loads(good[1])
    wrong_version["version"] = SCHEMA_VERSION + 1
    missing = json.loads(good[2])
    del missing["verifier"]
    lines = [good[0], "{this is not json", json.dumps(wrong_version), "", "[1, 2]", json.dumps(missing), good[2]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(iter_jsonl(path))
    errors = {no: str(e) for no, e in items if isinstance(e, LineError)}
    assert sorted(errors) == [2, 3, 5, 6]
    assert "not valid JSON" in errors[2]
    assert f"schema version {SCHEMA_VERSION + 1}" in errors[3] and "regenerate" in errors[3]
    assert "expected a JSON object" in errors[5]
    assert "missing key 'verifier'" in errors[6]
    assert [no for no, r in items if isinstance(r, TaskRecord)] == [1, 7]


def test_unknown_implementation_is_a_spec_error(task_set: list[TaskRecord]) -> None:
    from agentkit.envs.families import resolve

    with pytest.raises(SpecError, match="unknown tool implementation"):
        resolve("nofamily.op")


def test_numbers_in_reads_like_a_person() -> None:
    assert numbers_in("The balance is 1,234.50 USD.") == [1234.5]
    assert numbers_in("Account ACC-104 and AC105 hold -17 and 3") == [-17.0, 3.0]
    assert numbers_in("no digits") == []


def test_answer_checks() -> None:
    num = AnswerCheck("number", value=42.5, tolerance=0.01)
    assert num.check("It is 42.50.") is None
    assert "no number" in (num.check("forty-two") or "")
    assert num.check("41.5") is not None
    assert "lists" in (num.check("1 2 3 4 5 42.5") or "")
    assert "no final answer" in (num.check(None) or "")
    text = AnswerCheck("text", values=["Maria Lopez"], reject=["Maria Silva"])
    assert text.check("Her manager is maria lopez.") is None
    assert "does not name" in (text.check("It is Maria.") or "")
    assert "also names" in (text.check("Maria Lopez or Maria Silva") or "")


def test_verifier_reports_collateral_damage_and_missing_changes() -> None:
    expect = {"changed": {"acc": {"A1": {"balance": 50.0}}}, "created": {"tx": [{"amount": -5}]}, "deleted": {}}
    v = Verifier(expect=expect)
    ok = {"changed": {"acc": {"A1": {"balance": 50.001}}}, "created": {"tx": [{"amount": -5.0}]}, "deleted": {}}
    assert v.diff_failures(ok) == []
    bad = {"changed": {"acc": {"A2": {"balance": 1}}}, "created": {"tx": [{"amount": -6}]}, "deleted": {"acc": ["A3"]}}
    text = "\n".join(v.diff_failures(bad))
    assert "acc/A1 was not changed" in text
    assert "collateral change: acc/A2" in text
    assert "collateral change: acc/A3 was deleted" in text
    assert "missing new record in tx" in text and "unexpected new record in tx" in text
