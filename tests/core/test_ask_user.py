"""`agentkit run --tool ask_user`: the question reaches the person on stderr, their line goes back to the model as
the tool's result; with nobody there (stdin closed) the model reads that no answer came, and the run goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from agentkit.testing.scripted_server import Reply

SCRIPT = [Reply(reasoning="I need the city.", tool_calls=[("ask_user", '{"question": "Which city should I book?"}')]),
          Reply(reasoning="The user answered.", content="Booked.")]  # fmt: skip


def _run(serve, stdin: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    srv = serve(list(SCRIPT))
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-test-0123456789"}
    proc = subprocess.run([sys.executable, "-m", "agentkit", "run", "Book me a trip", "--tool", "ask_user", "--json"],
                          input=stdin, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(proc.stdout)


def test_the_answer_goes_back_to_the_model(serve) -> None:
    proc, result = _run(serve, "Vienna\n")
    assert "? Which city should I book?" in proc.stderr
    tool_messages = [m for m in result["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["Vienna"]
    assert result["status"] == "completed" and result["output"] == "Booked."


def test_nobody_there_is_an_answer_not_a_hang(serve) -> None:
    _, result = _run(serve, "")
    tool_messages = [m for m in result["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1 and tool_messages[0]["content"].startswith("(no answer")
