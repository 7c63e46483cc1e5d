"""`agentkit sandbox build | status | prune` (run as `python -m agentkit.sandbox`, the same code)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from agentkit.sandbox import engine, image

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
