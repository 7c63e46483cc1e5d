"""Harbor export of a family (generated) task: its tools are agentkit code, so the folder carries that code.

    <task_id>/
      environment/app/          tool, family_tool.py, environment.json (tools, state, files, corpus), vendor/
      tests/                    test.sh, family_tool.py, record.json (the full record: the verifier), vendor/
      solution/solve.sh         the reference's calls through `tool`, then the answer into /app/answer.txt

`vendor/` holds the agentkit modules the task's tools import and nothing else: the record format (`spec`,
`errors`), the runtime, the shared kit and the task's own families (found by following their imports), all
stdlib-only. So the container runs the very same tool code `agentkit eval` runs, with no agentkit from PyPI; the
environment's copy has no solution and no verifier, the tests' copy has the whole record.
"""

from __future__ import annotations

import re
from pathlib import Path

import agentkit.envs.spec as _spec
import agentkit.errors as _errors
from agentkit.envs.spec import TaskRecord

ENVS_DIR = Path(_spec.__file__).parent
TOOL_PY = Path(__file__).with_name("harbor_family_tool.py")
TOOL_SCRIPT = '#!/bin/sh\nexec python3 "${APP:-/app}/family_tool.py" "$@"\n'
TEST_SH = """#!/bin/bash
# Verifies the agent's changes in ${APP:-/app}/work and the answer in ${APP:-/app}/answer.txt; reward 1 or 0.
HERE="$(cd "$(dirname "$0")" && pwd)"
LOGS="${LOGS:-/logs}"
mkdir -p "$LOGS/verifier"
python3 "$HERE/family_tool.py" verify "${APP:-/app}/answer.txt" "$LOGS/verifier/reward.txt"
"""
CORE = ("__init__.py", "errors.py", "spec.py", "runtime.py", "fts.py", "family.py", "families/__init__.py")
_FAMILY_IMPORT = re.compile(r"agentkit\.envs\.families\.([a-z][a-z0-9_]*)")


def needed_families(record: TaskRecord) -> list[str]:
    """The family folders the task's tools resolve to, closed over the families those import."""
    todo = [t.impl.partition(".")[0] for t in record.environment.tools]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        folder = ENVS_DIR / "families" / name
        if name in seen or not folder.is_dir():
            continue
        seen.add(name)
        for src in folder.glob("*.py"):
            todo += _FAMILY_IMPORT.findall(src.read_text(encoding="utf-8"))
    return sorted(seen)


def vendored_sources(record: TaskRecord) -> dict[str, bytes]:
    """Paths under vendor/ and their bytes: the modules the task's tools need to run without agentkit installed."""
    out = {"agentkit/__init__.py": b'"""The agentkit modules an exported task needs (vendored)."""\n',
           "agentkit/errors.py": Path(_errors.__file__).read_bytes()}  # fmt: skip
    for rel in CORE:
        out[f"agentkit/envs/{rel}"] = (ENVS_DIR / rel).read_bytes()
    for src in sorted((ENVS_DIR / "families").glob("_kit*.py")):
        out[f"agentkit/envs/families/{src.name}"] = src.read_bytes()
    for fam in needed_families(record):
        for src in sorted((ENVS_DIR / "families" / fam).glob("*.py")):
            out[f"agentkit/envs/families/{fam}/{src.name}"] = src.read_bytes()
    return out


def family_layout(record: TaskRecord) -> dict[str, bytes | str]:
    """The files of the folder that differ from a package's export (task.toml, instruction.md, solve.sh and the
    Dockerfile are shared, in `harbor.py`)."""
    tool_py = TOOL_PY.read_bytes()
    layout: dict[str, bytes | str] = {
        "environment/app/tool": TOOL_SCRIPT, "environment/app/family_tool.py": tool_py,
        "environment/app/environment.json": _spec.canonical_json(record.environment.to_dict()),
        "tests/test.sh": TEST_SH, "tests/family_tool.py": tool_py, "tests/record.json": record.to_json(),
    }  # fmt: skip
    for rel, data in vendored_sources(record).items():
        layout[f"environment/app/vendor/{rel}"] = data
        layout[f"tests/vendor/{rel}"] = data
    return layout
