"""Environment packages: the folder format, its records, and the gates, run for real in fresh sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.envs.errors import SpecError
from agentkit.envs.packages import GateConfig, Package, check_package, is_package_record, package_of_record
from agentkit.envs.packages.gates import looked_up, wrong_answers
from agentkit.envs.packages.static import scan
from agentkit.envs.spec import TaskRecord
from agentkit.testing.packages import broken_packages, trip_package


def test_folder_round_trip(tmp_path: Path) -> None:
    pkg = trip_package()
    root = pkg.write(tmp_path / "oslo")
    assert sorted(p.name for p in root.iterdir()) == ["data.sqlite", "env.json", "tasks", "tools.py"]
    assert sorted(p.name for p in (root / "tasks" / "book-cheapest").iterdir()) == ["solution.py", "task.json", "verify.py"]
    again = Package.load(root)
    assert again.manifest() == pkg.manifest() and again.data == pkg.data and again.tasks == pkg.tasks


def test_env_toml_and_missing_parts_are_named(tmp_path: Path) -> None:
    root = trip_package().write(tmp_path / "p")
    (root / "env.json").unlink()
    (root / "env.toml").write_text('description = "Flights"\ncategory = "trip planning"\ndata = "data.sqlite"\n')
    assert Package.load(root).category == "trip planning"
    (root / "tools.py").unlink()
    with pytest.raises(SpecError, match="no tools.py"):
        Package.load(root)
    (root / "env.toml").write_text('description = "Flights"\n')
    with pytest.raises(SpecError, match="category"):
        Package.load(root)


def test_static_scan_names_the_gate() -> None:
    assert [f.gate for f in scan("import socket\n", "tools.py")] == ["escape"]
    assert [f.gate for f in scan("def solve(tools):\n    return open('data.json').read()\n", "s.py", solution=True)] == [
        "direct_access", "direct_access"]
    assert [f.gate for f in scan("def solve(tools):\n    return tools.__dict__\n", "s.py", solution=True)] == ["escape"]
    assert [f.gate for f in scan("def solve(tools:\n", "s.py", solution=True)] == ["load"]


def test_looked_up_values_and_wrong_answers() -> None:
    calls = [{"tool": "search", "args": {"city": "Oslo"}, "result": [{"id": "FL1", "price": 149.5, "city": "Oslo"},
                                                                     {"id": "FL2", "price": 180.0, "city": "Oslo"}]},
             {"tool": "book", "args": {"flight_id": "FL1"}, "result": {"ok": True}}]
    hidden = looked_up(calls, "Booked FL1 for 149.5")
    assert ("id", "FL1") in hidden and ("price", 149.5) in hidden and all(v != "Oslo" for _, v in hidden)
    wrong = wrong_answers("Booked FL1 for 149.5", calls)
    assert "I could not find that." in wrong and any("FL2" in w and "149.5" not in w for w in wrong)


@pytest.mark.docker
def test_good_package_is_kept_as_self_contained_records(gated_trip: list[TaskRecord]) -> None:
    book, total = gated_trip
    assert is_package_record(book) and book.task.family == "pkg.trip-planning"
    again = TaskRecord.from_json(book.to_json())
    assert again.to_json() == book.to_json() and again.verifier.program
    assert set(book.environment.files) == {"env.json", "tools.py", "data.sql"}
    assert [c.tool for c in book.solution.calls] == ["search_flights", "book_flight"]
    assert [t.writes for t in book.environment.tools] == [True, False, False]  # measured, not declared
    assert "FL102" in book.meta["hidden"] and book.meta["writes"] == 1
    assert book.solution.answer == "Booked BK2 on FL102 for 149.5"
    assert total.meta["writes"] == 0 and "189" in total.solution.answer
    assert package_of_record(book).tasks[0].solution_py.startswith("def solve(tools)")


CORPUS = broken_packages()


@pytest.mark.docker
@pytest.mark.parametrize("name", list(CORPUS))
async def test_broken_package_is_rejected_for_its_reason(name: str) -> None:
    reason, pkg = CORPUS[name]
    report = await check_package(pkg, config=GateConfig(exec_timeout=4))
    [outcome] = report.outcomes
    assert (outcome.kept, outcome.reason) == (False, reason), outcome.detail
    assert outcome.detail


def test_the_corpus_covers_every_named_failure() -> None:
    reasons = {r for r, _ in CORPUS.values()}
    assert {"vacuous", "direct_access", "nondeterministic", "leak", "verifier_error", "timeout", "escape",
            "trivial"} <= reasons
    assert json.dumps(sorted(reasons))
