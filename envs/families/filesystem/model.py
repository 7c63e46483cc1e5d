"""Virtual file system data model: files keyed by absolute path (directories are implied by paths)."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import vocab
from agentkit.envs.family import pick

SERVICES = ("billing", "search", "auth", "media", "reports", "gateway", "mailer", "scheduler")
USERS = ("root", "deploy", "alice", "bob", "svc")
LEVELS = ("debug", "info", "warning", "error")

COLLECTIONS = {"files": ("files", "fs", "inodes")}
FIELDS = {"path": ("path", "full_path"), "size": ("size", "bytes", "size_bytes"), "owner": ("owner", "uid", "user"),
          "content": ("content", "data", "text")}


def config_text(port: int, level: str, workers: int) -> str:
    return f"# service configuration\nport = {port}\nlog_level = {level}\nworkers = {workers}\n"


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    services = rng.sample(SERVICES, 3 + min(difficulty, 4))
    root = pick(rng, ("/etc/app", "/srv/config", "/opt/conf"))
    files: dict[str, dict[str, Any]] = {}

    def add(path: str, size: int, owner: str, content: str) -> None:
        files[path] = {f["path"]: path, f["size"]: size, f["owner"]: owner, f["content"]: content}

    ports = rng.sample(range(8000, 9000), len(services))
    for svc, port in zip(services, ports, strict=True):
        text = config_text(port, pick(rng, LEVELS), rng.randrange(2, 17))
        add(f"{root}/{svc}.conf", len(text), "root", text)
        for day in rng.sample(range(1, 29), 2 + rng.randrange(1 + difficulty)):
            add(f"/var/log/{svc}/{svc}-2025-06-{day:02d}.log", rng.randrange(1, 900) * 1024, pick(rng, USERS),
                f"log lines of {svc}")
        if rng.random() < 0.5:
            add(f"/var/log/{svc}/README.txt", 300 + rng.randrange(400), "root", "rotation policy")
    for i in range(3 + difficulty):
        add(f"/tmp/scratch/{pick(rng, ('upload', 'cache', 'dump'))}-{i}.tmp", rng.randrange(1, 300) * 1024,
            pick(rng, USERS), "temporary")
    ordered = dict(sorted(files.items()))
    return ({cols["files"]: ordered}, {"collections": cols, "fields": f, "today": "2025-07-01"},
            {"services": services, "root": root})
