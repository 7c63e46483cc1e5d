"""The `tool` command and the verifier of an exported Harbor task made from a family (generated) task.

Copied into the task folder next to `vendor/`, the agentkit modules the task's tools need (the record format, the
runtime and the task's families: all stdlib-only), so the container needs nothing from PyPI:

    tool                      list the tools with their JSON Schemas
    tool NAME '{"arg": 1}'    call one tool; the changes persist in $APP/work/writes.json between calls
    python3 family_tool.py verify ANSWER_FILE REWARD_FILE   (tests/test.sh, with the tests' own full record)

The environment holds only `environment.json` (tools, state, files, corpus: no solution, no verifier); the
verifier runs from the tests folder's own `record.json` over the same initial state plus the agent's changes.
"""

from __future__ import annotations

import json
import os
import sys

APP = os.environ.get("APP", "/app")
WORK = os.path.join(APP, "work")
WRITES = os.path.join(WORK, "writes.json")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "vendor"))

from agentkit.envs.runtime import BM25Search, ReferencePython, Workspace, call_tool, score  # noqa: E402
from agentkit.envs.spec import Environment, TaskRecord  # noqa: E402


def _workspace(state: dict) -> Workspace:
    ws = Workspace(state)
    if os.path.exists(WRITES):
        with open(WRITES, encoding="utf-8") as fh:
            ws.writes = json.load(fh)
    return ws


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "verify":
        answer = open(argv[2], encoding="utf-8").read().strip() if os.path.exists(argv[2]) else None
        with open(os.path.join(HERE, "record.json"), encoding="utf-8") as fh:
            record = TaskRecord.from_json(fh.read())
        verdict = score(record, _workspace(record.environment.state), answer or None)
        os.makedirs(os.path.dirname(argv[3]) or ".", exist_ok=True)
        with open(argv[3], "w", encoding="utf-8") as fh:
            fh.write("1" if verdict.passed else "0")
        print(json.dumps({"passed": verdict.passed, "failures": verdict.failures}))
        return 0
    with open(os.path.join(HERE, "environment.json"), encoding="utf-8") as fh:
        env = Environment.from_dict(json.load(fh))
    if len(argv) < 2:
        print(json.dumps({t.name: {"description": t.description, "parameters": t.parameters} for t in env.tools},
                         indent=2))  # fmt: skip
        return 0
    try:
        args = json.loads(argv[2]) if len(argv) > 2 and argv[2].strip() else {}
    except json.JSONDecodeError as exc:
        print(f"Arguments for '{argv[1]}' are not valid JSON: {exc.msg}")
        return 1
    ws = _workspace(env.state)
    search = BM25Search(env.corpus) if env.corpus else None
    res = call_tool(env, ws, argv[1], args, search=search, python=ReferencePython())
    os.makedirs(WORK, exist_ok=True)
    with open(WRITES, "w", encoding="utf-8") as fh:
        json.dump(ws.writes, fh)
    print(res.content)
    return 1 if res.is_error else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
