"""`agentkit sandbox build | status | prune` (run as `python -m agentkit.sandbox`, the same code)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from agentkit.sandbox import engine, image
from agentkit.testing.scripted_server import Reply

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentkit.sandbox", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_build_is_idempotent_and_fast_when_the_image_exists() -> None:
    t0 = time.monotonic()
    done = cli("build")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 10
    assert f"{image.image_tag()} is up to date" in done.stderr
    assert "smoke test: python 3.11" in done.stderr and "network none" in done.stderr


def test_status_reports_engine_image_and_containers() -> None:
    done = cli("status", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["image"] == image.image_tag() and info["image_built"] is True
    assert info["engine"].startswith(engine.client().version()["Version"])
    assert isinstance(info["containers"], list)


def test_prune_removes_orphans_and_stale_images_only() -> None:
    api = engine.client().api
    tag = image.image_tag()
    dead_owner = f"{socket.gethostname()}/999999999/0"
    orphan = api.create_container(tag, labels={engine.LABEL: "1", engine.OWNER_LABEL: dead_owner})["Id"]
    live = api.create_container(tag, labels=engine.labels())["Id"]  # owned by this (live) test process
    api.tag(tag, image.IMAGE_REPO, "stale-test")
    try:
        done = cli("prune")
        assert done.returncode == 0, done.stderr
        present = {c["Id"] for c in api.containers(all=True)}
        assert orphan not in present and live in present
        tags = {t for i in api.images(name=image.IMAGE_REPO) for t in i.get("RepoTags") or []}
        assert f"{image.IMAGE_REPO}:stale-test" not in tags and tag in tags
    finally:
        engine.remove_container(live)
        engine.remove_container(orphan)


HOSTILE_CELL = (
    "import sys\nprint('\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202ereversed\\rover')\n"
    "sys.stderr.write('\\x1b[31mred\\n')\nraise ValueError('lone \\ud800 surrogate \\x1b[5m')"
)


def _hostile_script(body: dict) -> Reply:
    if body["messages"][-1].get("role") == "tool":
        return Reply(content="done \x1b[2J")
    return Reply(tool_calls=[("python", json.dumps({"code": HOSTILE_CELL}))])


def test_the_cli_survives_any_output_of_the_sandbox(serve) -> None:  # type: ignore[no-untyped-def]
    """Issue 40: a lone surrogate in an exception made `agentkit run --tool python` exit 1 with UnicodeEncodeError,
    and escape sequences in sandbox output reached the terminal."""
    srv = serve(_hostile_script)
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-x", "PYTHONIOENCODING": "utf-8"}
    for extra in ([], ["--json"]):
        proc = subprocess.run(
            [sys.executable, "-m", "agentkit.app.cli", "run", "go", "--tool", "python", *extra],
            cwd=ROOT, env=env, capture_output=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        out = proc.stdout.decode("utf-8")  # strict: valid UTF-8
        assert b"\x1b" not in proc.stdout and b"\x07" not in proc.stdout and "\u202e" not in out
        assert b"\r" not in proc.stdout.replace(b"\r\n", b"")
        if extra:
            data = json.loads(out)
            assert data["status"] == "completed"
            assert any("ValueError" in str(m.get("content")) for m in data["messages"])
        else:
            assert "\\x1b[2J" in out and "ValueError" in out
