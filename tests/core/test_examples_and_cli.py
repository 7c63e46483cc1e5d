"""The examples and the CLI, run as a user would (subprocesses) against the real local test server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentkit.testing.scripted_server import auto_script

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("example", ["quickstart.py", "streaming_events.py", "deepseek_thinking_tools.py"])
def test_example_runs(serve, example: str) -> None:
    srv = serve(auto_script, enforce="deepseek-v4", api_key="sk-example")
    proc = run([sys.executable, f"examples/{example}"], {"DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-example"})
    assert proc.returncode == 0, proc.stderr
    assert "Done. The tool said:" in proc.stdout
    assert len(srv.requests) >= 2 and all(r.get("tools") for r in srv.requests)


def test_import_agentkit_is_light() -> None:
    code = "import sys, agentkit, agentkit.app.cli; agentkit.app.cli.build_parser(); print(sorted(m for m in ('torch', 'docker') if m in sys.modules))"
    proc = run([sys.executable, "-c", code], {})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_cli_run_streams_and_prints_usage(serve) -> None:
    srv = serve(auto_script, enforce="deepseek-v4")
    proc = run(
        [sys.executable, "-m", "agentkit.app.cli", "run", "count words in 'a b c'", "--model", "deepseek-v4-flash",
         "--tool", "examples.cli_tools:word_count"],
        {"DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-x", "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "thinking: I will call word_count." in proc.stdout
    assert "→ word_count" in proc.stdout and "← word_count" in proc.stdout
    assert "completed" in proc.stdout and "tool calls" in proc.stdout and "$0.0000" in proc.stdout


def test_cli_run_json_and_exit_codes(serve) -> None:
    srv = serve(auto_script)
    env = {"DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-x"}
    proc = run([sys.executable, "-m", "agentkit.app.cli", "run", "hi", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "completed" and data["output"] == "Hello from the scripted server."
    assert data["messages"][-1]["reasoning_content"] == "A greeting is enough."
    proc = run([sys.executable, "-m", "agentkit.app.cli", "run", "hi", "--tool", "examples.cli_tools:word_count",
                "--max-turns", "1", "--json"], env)  # fmt: skip
    assert proc.returncode == 3 and json.loads(proc.stdout)["status"] == "max_turns"


def test_cli_without_key_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "agentkit.app.cli", "run", "hi"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "set the environment variable DEEPSEEK_API_KEY" in proc.stderr


@pytest.mark.docker  # its python tool runs in the real sandbox
def test_demo_runs_offline_with_real_tools_and_leaves_no_container() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEEPSEEK_API_KEY", "AGENTKIT_PROVIDER")}
    env["COLUMNS"] = "200"
    env["AGENTKIT_DEMO_MODEL"] = "scripted"
    child = subprocess.Popen([sys.executable, "-m", "agentkit.app.cli", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, out + err
    assert "scripted" in out and "export DEEPSEEK_API_KEY" in out  # says what it is and how to use a real model
    assert "← search" in out and "statistics.median" in out  # the real stdlib index answered
    assert "← python" in out and "3.5" in out  # the real sandbox ran the code
    assert "The median is **3.5**" in out and "completed · 3 turns · 2 tool calls" in out
    ps = subprocess.run(["docker", "ps", "-a", "--filter", "label=agentkit.sandbox", "--format", '{{.Label "agentkit.sandbox.owner"}}'],
                        capture_output=True, text=True, check=True)  # fmt: skip
    owners = ps.stdout.split()
    assert not [o for o in owners if o.startswith(f"{socket.gethostname()}/{child.pid}/")], owners
