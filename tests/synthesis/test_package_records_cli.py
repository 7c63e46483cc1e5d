"""`agentkit envs check` and `agentkit envs show` on package records: check re-runs every gate in fresh sandboxes
(a tampered record fails for its reason), show prints the package's solution and verifier as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.envs.cli import main as envs_main
from agentkit.envs.spec import TaskRecord, write_jsonl

pytestmark = pytest.mark.docker


def test_check_regates_package_records(gated_trip: list[TaskRecord], tmp_path: Path, capsys) -> None:
    write_jsonl(tmp_path / "ok.jsonl", gated_trip)
    assert envs_main(["check", str(tmp_path / "ok.jsonl")]) == 0
    assert "2/2 tasks pass every check" in capsys.readouterr().err
    trivial, stale = (TaskRecord.from_json(gated_trip[0].to_json()) for _ in range(2))
    trivial.verifier.program = "def verify(initial, final, answer):\n    return True\n"
    stale.solution.answer = "Booked something for 1"
    write_jsonl(tmp_path / "bad.jsonl", [trivial, stale])
    assert envs_main(["check", str(tmp_path / "bad.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err and "trivial" in err and "line 2" in err and "stale" in err
    assert "0/2 tasks pass every check" in err


def test_show_prints_the_package_code(gated_trip: list[TaskRecord], tmp_path: Path, capsys) -> None:
    write_jsonl(tmp_path / "t.jsonl", gated_trip)
    assert envs_main(["show", str(tmp_path / "t.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "Package oslo-trips / task book-cheapest" in out
    assert "tools.book_flight(flight_id=cheapest[\"id\"], passenger=\"Ana Lima\")" in out
    assert 'numbers = [float(x) for x in re.findall(' in out
    assert "search_flights" in out and "solution_py" not in out
