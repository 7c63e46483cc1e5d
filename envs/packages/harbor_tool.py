"""The `tool` command and the verifier of an exported Harbor task (stdlib only; copied into the task folder).

    tool                      list the tools with their JSON Schemas
    tool NAME '{"arg": 1}'    call one tool; the state persists in $APP/work between calls
    python3 harbor_tool.py verify ANSWER_FILE REWARD_FILE   (tests/test.sh, with its own copy of the package)

The package is in $APP/pkg (default /app/pkg) and is never modified; the agent's state is a copy in $APP/work.
The verifier runs from the tests folder's own copy (harness, initial data, verify.py), never from the agent's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

APP = os.environ.get("APP", "/app")
PKG, WORK = os.path.join(APP, "pkg"), os.path.join(APP, "work")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402 - the package's harness, next to the package


def _work_env() -> harness.Env:
    if not os.path.isdir(WORK):
        shutil.copytree(PKG, WORK)
    return harness.Env(WORK)


def _save(env: harness.Env) -> None:
    meta = env.meta
    if env.data.kind == "json":
        with open(os.path.join(WORK, meta.get("data", "data.json")), "w", encoding="utf-8") as fh:
            fh.write(harness.canonical(env.data.db))
        return
    env.data.db.row_factory = None
    for name in ("data.sqlite", "data.db"):
        if os.path.exists(os.path.join(WORK, name)):
            os.remove(os.path.join(WORK, name))
    with open(os.path.join(WORK, "data.sql"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(env.data.db.iterdump()))
    meta["data"] = "data.sql"
    with open(os.path.join(WORK, "env.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "verify":
        answer = open(argv[2], encoding="utf-8").read().strip() if os.path.exists(argv[2]) else None
        own = os.path.join(HERE, "pkg")
        with open(os.path.join(own, "env.json"), encoding="utf-8") as fh:
            initial = harness.Data(own, json.load(fh)).snapshot()
        final = initial
        if os.path.isdir(WORK):
            with open(os.path.join(WORK, "env.json"), encoding="utf-8") as fh:
                final = harness.Data(WORK, json.load(fh)).snapshot()
        harness._PKG[0] = os.path.realpath(own)
        task = sorted(os.listdir(os.path.join(own, "tasks")))[0]
        verdict = harness.verify(own, task, initial, final, answer or None)
        os.makedirs(os.path.dirname(argv[3]) or ".", exist_ok=True)
        with open(argv[3], "w", encoding="utf-8") as fh:
            fh.write("1" if verdict["passed"] else "0")
        print(json.dumps(verdict))
        return 0
    env = _work_env()
    if len(argv) < 2:
        print(json.dumps(env.schemas, indent=2))
        return 0
    entry = env.call(argv[1], json.loads(argv[2]) if len(argv) > 2 else {})
    _save(env)
    print(json.dumps(entry["result"], ensure_ascii=False))
    return 1 if entry["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
