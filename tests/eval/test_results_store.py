"""The results store cannot lose a line: reading never writes, a corrupt line is reported by number and skipped
(never cut away with the lines after it), repair is explicit and keeps a backup, each attempt records its run, and
a file is never both input and output."""

from __future__ import annotations

import json
from pathlib import Path

from agentkit.envs.results import ResultsStore, load_results
from agentkit.testing.oracle import oracle_script


def _eval(cli, srv, task_file: Path, out: Path, *extra: str) -> int:
    return cli("eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle", "--base-url", srv.base_url,
               "--out", str(out), "--no-report", *extra)  # fmt: skip


def test_a_corrupt_middle_line_costs_that_line_only(cli, serve, task_file, small_tasks, tmp_path, capsys) -> None:
    srv = serve(oracle_script(small_tasks))
    out = tmp_path / "r.jsonl"
    assert _eval(cli, srv, task_file, out) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + len(small_tasks)
    lost_id = json.loads(lines[4])["task_id"]
    lines[4] = lines[4][: len(lines[4]) // 2] + "#garbage"  # corrupt line 5 of 13, in the middle
    out.write_text("\n".join(lines) + "\n")
    before = out.read_bytes()
    capsys.readouterr()

    loaded = ResultsStore(out).read()
    assert [p.line for p in loaded.problems] == [5] and len(loaded.records) == len(small_tasks) - 1
    assert cli("eval", "report", str(out)) == 1  # the file is not clean: say so
    captured = capsys.readouterr()
    assert "line 5" in captured.err and "eval repair" in captured.err
    assert f"{len(small_tasks) - 1}" in captured.out
    assert cli("eval", "compare", str(out), str(out)) == 1
    assert out.read_bytes() == before  # read-only commands wrote nothing

    requests = len(srv.requests)
    assert _eval(cli, srv, task_file, out) == 0  # resume re-runs the one lost attempt, nothing else
    after = load_results(out)
    assert len(after) == len(small_tasks) and all(r.passed for r in after)
    rerun = next(t for t in small_tasks if t.task.task_id == lost_id)
    steps = len(rerun.solution.calls) + 1
    assert len(srv.requests) - requests == steps + 1  # its steps + the pre-flight request
    assert out.read_bytes().startswith(before)  # appended, never rewritten


def test_repair_is_explicit_and_keeps_a_backup(cli, tmp_path, capsys) -> None:
    from agentkit.envs.results import AttemptRecord

    out = tmp_path / "r.jsonl"
    with ResultsStore(out).open({"config": {"model": "m"}}) as f:
        for i in range(3):
            f.append(AttemptRecord(f"t{i}", 0, "f", 1, passed=True, status="completed"))
    original = out.read_bytes() + b"not json\n"
    out.write_bytes(original)
    assert cli("eval", "repair", str(out)) == 0
    assert "removed line 5" in capsys.readouterr().out
    backups = list(tmp_path.glob("r.jsonl.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    loaded = ResultsStore(out).read()
    assert not loaded.problems and len(loaded.records) == 3 and loaded.config == {"model": "m"}


def test_input_and_output_never_the_same_file(cli, task_file, tmp_path, capsys) -> None:
    before = task_file.read_bytes()
    assert cli("eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "m", "--out", str(task_file)) == 2
    err = capsys.readouterr().err
    assert "is the task file" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other_tasks.jsonl"
    other.write_bytes(before)
    assert cli("eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "m", "--out", str(other)) == 2
    assert "something other than results" in capsys.readouterr().err
    assert task_file.read_bytes() == before and other.read_bytes() == before


def test_each_attempt_records_the_run_and_reports_read_it(cli, serve, task_file, small_tasks, tmp_path, capsys) -> None:
    srv = serve(oracle_script(small_tasks))
    out = tmp_path / "k2.jsonl"
    assert _eval(cli, srv, task_file, out, "--k", "2", "--max-tasks", "4") == 0
    loaded = ResultsStore(out).read()
    assert len(loaded.records) == 8 and loaded.k == 2
    for r in loaded.records:
        assert r.k == 2 and r.config == loaded.config and r.config["model"] == "oracle" and r.config["max_turns"] == 20
    capsys.readouterr()
    assert cli("eval", "report", str(out)) == 0  # k=2 from the file, not a default of 1
    text = capsys.readouterr().out
    assert "k=2" in text and "pass@2" in text and "pass^2" in text
    html = out.with_suffix(".report.html").read_text()
    assert "pass@2" in html and "oracle" in html  # the configuration travels into the report
    assert cli("eval", "report", str(out), "--k", "5") == 2
    assert "k=2" in capsys.readouterr().err
    assert cli("eval", "compare", str(out), str(out)) == 0
    assert "pass@2" in capsys.readouterr().out


def test_a_torn_line_then_a_resume_keeps_every_record(tmp_path) -> None:
    from agentkit.envs.results import AttemptRecord

    out = tmp_path / "r.jsonl"
    with ResultsStore(out).open({"config": {}}) as f:
        f.append(AttemptRecord("a", 0, "f", 1, passed=True, status="completed"))
    with out.open("a") as g:
        g.write(json.dumps({"kind": "attempt", "task_id": "b"})[:20])
    for _ in range(2):  # two resumes in a row: each ends nothing but its own lines
        with ResultsStore(out).open({"config": {}}) as f:
            f.append(AttemptRecord("c", 0, "f", 1, passed=False, status="completed"))
    loaded = ResultsStore(out).read()
    assert [r.task_id for r in loaded.records] == ["a", "c"] and loaded.lines == 3
    assert [p.line for p in loaded.problems] == [3]
