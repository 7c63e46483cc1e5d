"""Validated arguments of `agentkit envs` and `agentkit eval`: every bad number, path or range is one line on stderr
and exit code 2 (no traceback); Ctrl-C in `envs generate` is quiet and a re-run resumes to the same file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.app.cli import main as agentkit_main

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> int:
    try:
        return agentkit_main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("args") / "tasks.jsonl"
    assert run("envs", "generate", "--n", "10", "--seed", "2", "--workers", "1", "--out", str(out)) == 0
    return out


@pytest.mark.parametrize("argv, says", [
    (["envs", "generate", "--n", "-5", "--out", "x.jsonl"], "at least 1"),
    (["envs", "generate", "--n", "0", "--out", "x.jsonl"], "at least 1"),
    (["envs", "generate", "--n", "ten", "--out", "x.jsonl"], "whole number"),
    (["envs", "generate", "--n", "20", "--difficulty", "1-3", "--out", "x.jsonl"], "not [3]"),
    (["envs", "generate", "--n", "5", "--difficulty", "3-1", "--out", "x.jsonl"], "backwards"),
    (["envs", "generate", "--n", "5", "--difficulty", "0-7", "--out", "x.jsonl"], "within 1-5"),
    (["envs", "generate", "--n", "5", "--workers", "0", "--out", "x.jsonl"], "at least 1"),
    (["envs", "generate", "--n", "5", "--out", "/nonexistent/dir/x.jsonl"], "does not exist"),
    (["envs", "show", "TASKS", "--index", "-1"], "at least 0"),
    (["envs", "check", "/nonexistent.jsonl"], "does not exist"),
    (["envs", "trajectories", "TASKS", "--out", "TASKS"], "is the input file"),
    (["eval", "--tasks", "TASKS", "--max-tasks", "0"], "at least 1"),
    (["eval", "--tasks", "TASKS", "--max-tasks", "-2"], "at least 1"),
    (["eval", "--tasks", "TASKS", "--k", "-5"], "at least 1"),
    (["eval", "--tasks", "TASKS", "--concurrency", "0"], "at least 1"),
    (["eval", "--tasks", "TASKS", "--max-cost", "-1"], "positive"),
    (["eval", "--tasks", "TASKS", "--shard", "3/2"], "1 <= I <= N"),
    (["eval", "--tasks", "TASKS", "--shard", "x"], "I/N"),
    (["eval", "--tasks", "TASKS", "--out", "/nonexistent/dir/r.jsonl"], "does not exist"),
    (["eval", "--tasks", "/nonexistent.jsonl"], "does not exist"),
    (["eval", "report", "/nonexistent.jsonl"], "does not exist"),
    (["eval", "frobnicate"], "unknown eval action"),
])  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(argv, says, tasks, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [str(tasks) if a == "TASKS" else a for a in argv]
    assert run(*argv, *(["--provider", "vllm", "--model", "m"] if argv[0] == "eval" and "--tasks" in argv else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())  # nothing written


def test_trajectories_never_empties_out_when_the_input_is_unreadable(tmp_path, capsys) -> None:
    out = tmp_path / "traj.jsonl"
    out.write_text("precious\n")
    assert run("envs", "trajectories", str(tmp_path / "missing.jsonl"), "--out", str(out)) == 2
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert run("envs", "trajectories", str(folder), "--out", str(out)) == 2
    assert out.read_text() == "precious\n"


def test_ctrl_c_in_generate_is_quiet_and_a_rerun_resumes(tmp_path) -> None:
    out, ref = tmp_path / "t.jsonl", tmp_path / "ref.jsonl"
    args = ["--n", "400", "--seed", "9", "--difficulty", "1-5"]
    cmd = [sys.executable, "-m", "agentkit.envs.cli", "generate", *args, "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = Path(str(out) + ".partial")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 40):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "run the same command to resume" in err
    assert not out.exists() and 40 <= len(partial.read_text().splitlines()) < 400
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    assert run("envs", "generate", *args, "--workers", "1", "--out", str(ref)) == 0
    assert out.read_text() == ref.read_text()  # resumed == uninterrupted, line for line
