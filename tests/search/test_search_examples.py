"""The search examples, run as a user would (subprocesses), against real local servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentkit.testing.scripted_server import auto_script

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"examples/{script}", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_quickstart_indexes_and_searches() -> None:
    proc = run("search_quickstart.py")
    assert proc.returncode == 0, proc.stderr
    assert "3 added" in proc.stdout and "3 unchanged" in proc.stdout
    assert "[1] Retries (guide/retries.md:1)" in proc.stdout


def test_agent_example_against_a_scripted_model(serve, stdlib_cache: Path) -> None:
    srv = serve(auto_script, api_key="sk-example")
    env = {"DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-example", "AGENTKIT_CACHE_DIR": str(stdlib_cache)}
    proc = run("search_agent.py", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "completed: 2 turns, 1 searches" in proc.stdout
    tool_messages = [m for m in srv.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages and ("result" in tool_messages[0]["content"] or "No results" in tool_messages[0]["content"])


def test_web_example_against_a_local_searxng(searxng: Any) -> None:
    proc = run("search_web.py", "bm25", env={"SEARXNG_URL": searxng.url})
    assert proc.returncode == 0, proc.stderr
    assert "- Result 0 about bm25" in proc.stdout and '3 results for "bm25":' in proc.stdout
    searxng.then(403, "Forbidden")
    failed = run("search_web.py", "bm25", env={"SEARXNG_URL": searxng.url})
    assert failed.returncode == 1 and "search.formats" in failed.stderr
