"""Export package tasks to Harbor task folders, the exchange format other RL and eval harnesses read:

    <task_id>/
      task.toml                 metadata (category, difficulty, measured pass rate) and limits
      instruction.md            the instruction, how to call the tools, where the answer goes
      environment/Dockerfile    python:3.11-slim with the package in /app/pkg and the `tool` command
      environment/app/          harness.py, harbor_tool.py, tool, pkg/ (env.json, tools.py, data; no tasks)
      tests/test.sh             runs the task's verifier from the tests' own copy; writes /logs/verifier/reward.txt
      solution/solve.sh         the reference: its recorded tool calls, then the answer into /app/answer.txt

A family (generated) task exports too: its folder carries the agentkit code its tools run (`harbor_family.py`).

Paths honour $APP (default /app) and $LOGS (default /logs), so the folders also run outside their image (the
tests run them in the agentkit sandbox).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from agentkit.envs.packages.format import HARNESS_PATH, is_package_record, package_of_record, slug
from agentkit.envs.packages.harbor_family import family_layout
from agentkit.envs.spec import TaskRecord

TOOL_SCRIPT = '#!/bin/sh\nexec python3 "${APP:-/app}/harbor_tool.py" "$@"\n'
DOCKERFILE = """FROM python:3.11-slim
WORKDIR /app
COPY app/ /app/
RUN chmod +x /app/tool && ln -s /app/tool /usr/local/bin/tool
"""
TEST_SH = """#!/bin/bash
# Verifies the final state in ${APP:-/app}/work and the answer in ${APP:-/app}/answer.txt; reward 1 or 0.
HERE="$(cd "$(dirname "$0")" && pwd)"
LOGS="${LOGS:-/logs}"
mkdir -p "$LOGS/verifier"
python3 "$HERE/harbor_tool.py" verify "${APP:-/app}/answer.txt" "$LOGS/verifier/reward.txt"
"""


def _toml_value(v: object) -> str:
    return json.dumps(v) if isinstance(v, str | int | float | bool) else json.dumps(str(v))


def task_toml(record: TaskRecord) -> str:
    meta = {"name": record.task.task_id, "category": record.meta.get("category", record.task.family),
            "difficulty": record.task.difficulty, "source": "agentkit", "family": record.task.family}  # fmt: skip
    if "pass_rate" in record.meta:
        meta["pass_rate"] = record.meta["pass_rate"]
    lines = ['version = "1.0"', "", "[metadata]"] + [f"{k} = {_toml_value(v)}" for k, v in meta.items()]
    lines += ["", "[verifier]", "timeout_sec = 120.0", "", "[agent]", "timeout_sec = 600.0", "",
              "[environment]", "build_timeout_sec = 600.0", "cpus = 1", "memory_mb = 1024", ""]  # fmt: skip
    return "\n".join(lines)


def instruction_md(record: TaskRecord) -> str:
    tools = "\n".join(f"- `{t.name}`: {t.description}" for t in record.environment.tools)
    return (f"{record.task.instruction}\n\n## Tools\n\nCall a tool with `tool NAME '<JSON arguments>'`; `tool` alone "
            f"prints every tool with its JSON Schema.\n\n{tools}\n\nWork only through the tools. When you are done, "
            "write your final answer (the value the task asks for, if any) to `/app/answer.txt`.\n")  # fmt: skip


def solve_sh(record: TaskRecord) -> str:
    lines = ["#!/bin/bash", "set -e", 'TOOL="${APP:-/app}/tool"']
    for c in record.solution.calls:
        lines.append(f'"$TOOL" {shlex.quote(c.tool)} {shlex.quote(json.dumps(c.arguments, ensure_ascii=False))} '
                     "> /dev/null || true")  # fmt: skip
    if record.solution.answer is not None:
        lines.append(f'printf %s {shlex.quote(record.solution.answer)} > "${{APP:-/app}}/answer.txt"')
    return "\n".join(lines) + "\n"


def export_task(record: TaskRecord, out: str | Path) -> Path:
    """One Harbor folder for a package task or a family (generated) task."""
    root = Path(out) / slug(record.task.task_id)
    common: dict[str, bytes | str] = {
        "task.toml": task_toml(record), "instruction.md": instruction_md(record),
        "environment/Dockerfile": DOCKERFILE, "solution/solve.sh": solve_sh(record),
    }  # fmt: skip
    layout = {**common, **(_package_layout(record) if is_package_record(record) else family_layout(record))}
    for rel, data in layout.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.encode() if isinstance(data, str) else data)
        if rel.endswith((".sh", "/tool")):
            dest.chmod(0o755)
    return root


def _package_layout(record: TaskRecord) -> dict[str, bytes | str]:
    pkg = package_of_record(record)
    files = pkg.sandbox_files()
    harness = HARNESS_PATH.read_bytes()
    tool_py = HARNESS_PATH.with_name("harbor_tool.py").read_bytes()
    layout: dict[str, bytes | str] = {
        "environment/app/tool": TOOL_SCRIPT,
        "environment/app/harness.py": harness, "environment/app/harbor_tool.py": tool_py,
        "tests/test.sh": TEST_SH, "tests/harness.py": harness, "tests/harbor_tool.py": tool_py,
    }  # fmt: skip
    for rel, data in files.items():
        if not rel.startswith("tasks/"):
            layout[f"environment/app/pkg/{rel}"] = data
            layout[f"tests/pkg/{rel}"] = data
        elif rel.endswith("verify.py"):
            layout[f"tests/pkg/{rel}"] = data
    return layout


def export_tasks(records: list[TaskRecord], out: str | Path) -> list[Path]:
    return [export_task(r, out) for r in records]
