"""The `agentkit.envs` command group: generate (progress + summary), check (bad lines by number), show, trajectories."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agentkit.envs.cli import main, parse_difficulty, register


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "tasks.jsonl"
    assert main(["generate", "--n", "30", "--seed", "3", "--families", "ledger,dataset,knowledge",
                 "--difficulty", "1-5", "--workers", "1", "--out", str(out)]) == 0
    return out


def test_generate_writes_n_checked_tasks(small_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = small_set.read_text().splitlines()
    assert len(lines) == 30
    fams = {json.loads(line)["task"]["family"] for line in lines}
    assert fams == {"ledger", "dataset", "knowledge"}


def test_generate_summary_and_bad_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--n", "5", "--seed", "1", "--out", str(tmp_path / "x.jsonl"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "5 tasks" in err and "discarded" in err and "distinct envs" in err
    assert main(["generate", "--n", "5", "--families", "nope", "--out", str(tmp_path / "y.jsonl")]) == 2
    assert "unknown families ['nope']" in capsys.readouterr().err
    assert not (tmp_path / "y.jsonl").exists() and not (tmp_path / "y.jsonl.partial").exists()


def test_check_passes_a_good_file_and_reports_bad_lines(small_set: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(small_set)]) == 0
    assert "30/30 tasks pass" in capsys.readouterr().err
    lines = small_set.read_text().splitlines()
    tampered = json.loads(lines[4])
    # A task whose verifier asks for nothing: doing nothing would pass it.
    tampered["solution"]["calls"], tampered["solution"]["answer"] = [], None
    tampered["verifier"].update(expect={"changed": {}, "created": {}, "deleted": {}}, predicates=[], answer=None)
    bad = [lines[0], "garbage", lines[1].replace('"version":1', '"version":99'), json.dumps(tampered), lines[0]]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(bad) + "\n")
    assert main(["check", str(path)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "line 2: not valid JSON" in err
    assert "line 3: schema version 99" in err
    assert "line 4:" in err and "trivial" in err
    assert "line 5:" in err and "duplicate of line 1" in err
    assert "1/3 tasks pass" in err and "2 unreadable line(s)" in err


def test_show_and_trajectories(small_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(small_set), "--index", "2"]) == 0
    out = capsys.readouterr().out
    for needle in ("Instruction", "Tools", "Reference solution", "Verifier"):
        assert needle in out
    assert main(["show", str(small_set), "--index", "999"]) == 2
    traj = tmp_path / "traj.jsonl"
    assert main(["trajectories", str(small_set), "--out", str(traj)]) == 0
    rows = [json.loads(x) for x in traj.read_text().splitlines()]
    assert len(rows) == 30 and all(r["messages"][0]["role"] == "system" for r in rows)
    styled = tmp_path / "styled.jsonl"
    assert main(["trajectories", str(small_set), "--out", str(styled), "--style", "local-model"]) == 0
    calls = [c["arguments"] for x in styled.read_text().splitlines()
             for m in json.loads(x)["messages"] for c in m.get("tool_calls") or []]  # fmt: skip
    expressions = [json.loads(a)["expression"] for a in calls if '"expression"' in a]
    assert expressions and all(e.startswith(" ") for e in expressions)  # the local model's leading space


def test_register_plugs_into_a_parent_parser() -> None:
    parser = argparse.ArgumentParser(prog="agentkit")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["envs", "generate", "--n", "3", "--out", "x.jsonl", "--difficulty", "2,4"])
    assert args.func.__name__ == "cmd_generate" and args.difficulty == [2, 4]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_difficulty("0-7")
