"""The environment package: a folder a person can read and edit, and its conversion to task records.

    my_env/
      env.json            {"name", "description", "category", "data": "data.sqlite" | "data.json"}  (or env.toml)
      data.sqlite | data.json
      tools.py            functions fn(db, **arguments) and SCHEMAS = {name: {"description", "parameters"}}
      tasks/<id>/
        task.json         {"instruction", "difficulty"}
        solution.py       def solve(tools): ... return answer        (may only call tools.<name>(**arguments))
        verify.py         def verify(initial, final, answer): ...    (-> bool or (bool, reason))

The host only ever reads these files as text (and parses Python with `ast` to check it); the code runs in the
sandbox (`harness.py`). A gated task becomes one self-contained `TaskRecord` (`to_record`): the tools, the data (a
SQLite database as SQL text) and the package's manifest travel in `environment.files`, each tool is a `ToolSpec`
with `impl="package.tool"`, the verifier's code in `verifier.program`, and the solution's recorded calls (with the
results the tools really returned) in `solution` and `meta["package"]`, so eval, trajectories and the oracle take it
like a generated task.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.envs.errors import SpecError
from agentkit.envs.runtime import PACKAGE_IMPL
from agentkit.envs.spec import Call, Environment, Solution, Task, TaskRecord, ToolSpec, Verifier, empty_diff

"""`ToolSpec.impl` of a package's tool: the call goes into the episode's sandbox session."""
DATA_NAMES = ("data.sqlite", "data.json", "data.sql")
HARNESS_PATH = Path(__file__).with_name("harness.py")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:60] or "env"


@dataclass
class PackageTask:
    id: str
    instruction: str
    solution_py: str
    verify_py: str
    difficulty: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {**self.extra, "instruction": self.instruction, "difficulty": self.difficulty}


@dataclass
class Package:
    """One environment: its manifest, its data (raw bytes), its tools' source and its tasks."""

    name: str
    description: str
    category: str
    data_name: str
    data: bytes
    tools_py: str
    tasks: list[PackageTask] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return f"pkg.{slug(self.category)}"

    def manifest(self) -> dict[str, Any]:
        return {**self.extra, "name": self.name, "description": self.description, "category": self.category,
                "data": self.data_name}  # fmt: skip

    # -- folders ------------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path) -> Package:
        """Read a package folder (nothing is executed). Raises `SpecError` with what is missing or malformed."""
        root = Path(folder)
        if (root / "env.json").is_file():
            try:
                meta = json.loads((root / "env.json").read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SpecError(f"{root}/env.json is not valid JSON: {exc.msg}") from exc
        elif (root / "env.toml").is_file():
            meta = tomllib.loads((root / "env.toml").read_text(encoding="utf-8"))
        else:
            raise SpecError(f"{root}: no env.json or env.toml (a package needs a description and a category)")
        for key in ("description", "category"):
            if not isinstance(meta.get(key), str) or not meta[key].strip():
                raise SpecError(f"{root}: env.json needs a non-empty {key!r}")
        data_name = meta.get("data") or next((n for n in DATA_NAMES if (root / n).is_file()), None)
        if data_name not in DATA_NAMES or not (root / data_name).is_file():
            raise SpecError(f"{root}: the data must be one of {DATA_NAMES} (env.json 'data' names it)")
        if not (root / "tools.py").is_file():
            raise SpecError(f"{root}: no tools.py")
        tasks = []
        for tdir in sorted(p for p in (root / "tasks").glob("*") if p.is_dir()):
            tasks.append(_load_task(tdir))
        if not tasks:
            raise SpecError(f"{root}: no tasks (tasks/<id>/task.json, solution.py, verify.py)")
        extra = {k: v for k, v in meta.items() if k not in ("name", "description", "category", "data")}
        return cls(name=str(meta.get("name") or root.name), description=meta["description"],
                   category=meta["category"], data_name=data_name, data=(root / data_name).read_bytes(),
                   tools_py=(root / "tools.py").read_text(encoding="utf-8"), tasks=tasks, extra=extra)  # fmt: skip

    def write(self, folder: str | Path) -> Path:
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        (root / "env.json").write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")
        (root / self.data_name).write_bytes(self.data)
        (root / "tools.py").write_text(self.tools_py, encoding="utf-8")
        for t in self.tasks:
            tdir = root / "tasks" / t.id
            tdir.mkdir(parents=True, exist_ok=True)
            (tdir / "task.json").write_text(json.dumps(t.meta(), indent=2) + "\n", encoding="utf-8")
            (tdir / "solution.py").write_text(t.solution_py, encoding="utf-8")
            (tdir / "verify.py").write_text(t.verify_py, encoding="utf-8")
        return root

    def sandbox_files(self, tasks: list[PackageTask] | None = None) -> dict[str, bytes]:
        """Paths (relative to the package dir in the sandbox) and contents."""
        files = {"env.json": json.dumps(self.manifest()).encode(), self.data_name: self.data,
                 "tools.py": self.tools_py.encode()}  # fmt: skip
        for t in self.tasks if tasks is None else tasks:
            files[f"tasks/{t.id}/task.json"] = json.dumps(t.meta()).encode()
            files[f"tasks/{t.id}/solution.py"] = t.solution_py.encode()
            files[f"tasks/{t.id}/verify.py"] = t.verify_py.encode()
        return files

    def task(self, task_id: str) -> PackageTask:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)


def _load_task(tdir: Path) -> PackageTask:
    need = [n for n in ("task.json", "solution.py", "verify.py") if not (tdir / n).is_file()]
    if need:
        raise SpecError(f"{tdir}: missing {', '.join(need)}")
    try:
        meta = json.loads((tdir / "task.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{tdir}/task.json is not valid JSON: {exc.msg}") from exc
    if not isinstance(meta.get("instruction"), str) or not meta["instruction"].strip():
        raise SpecError(f"{tdir}/task.json needs an 'instruction'")
    extra = {k: v for k, v in meta.items() if k not in ("instruction", "difficulty")}
    return PackageTask(id=tdir.name, instruction=meta["instruction"], difficulty=int(meta.get("difficulty", 1)),
                       solution_py=(tdir / "solution.py").read_text(encoding="utf-8"),
                       verify_py=(tdir / "verify.py").read_text(encoding="utf-8"), extra=extra)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Records


def is_package_record(record: TaskRecord) -> bool:
    return any(t.impl == PACKAGE_IMPL for t in record.environment.tools)


def to_record(pkg: Package, task: PackageTask, run: dict[str, Any], *, schemas: dict[str, Any],
              sql: str | None, hidden: list[str], writes: set[str], seed: int = 0) -> TaskRecord:  # fmt: skip
    """The gated task as one self-contained record. `run` is the harness's reference run (calls with results)."""
    tools = [ToolSpec(name=n, description=str(s.get("description", "")), parameters=s["parameters"],
                      impl=PACKAGE_IMPL, config={"package": pkg.name}, writes=n in writes)
             for n, s in sorted(schemas.items())]  # fmt: skip
    files = {"env.json": json.dumps(pkg.manifest(), sort_keys=True), "tools.py": pkg.tools_py}
    if sql is not None:
        files["data.sql"] = sql
    else:
        files[pkg.data_name] = pkg.data.decode("utf-8")
    env = Environment(family=pkg.family, tools=tools, state={}, files=files)
    calls = [Call(c["tool"], c["args"]) for c in run["calls"]]
    answer = run.get("answer")
    verifier = Verifier(expect=empty_diff(), program=task.verify_py)
    meta = {"hidden": hidden, "steps": len(calls), "writes": sum(1 for c in run["calls"] if c.get("changed")),
            "category": pkg.category, "package": {"name": pkg.name, "task": task.id, "description": pkg.description,
            "solution_py": task.solution_py, "results": [{"result": c["result"], "error": c["error"]}
                                                         for c in run["calls"]]}}  # fmt: skip
    rec = TaskRecord(task=Task(f"{slug(pkg.name)}-{slug(task.id)}", task.instruction, pkg.family, task.difficulty,
                               seed),
                     environment=env, solution=Solution(calls, answer), verifier=verifier, meta=meta)  # fmt: skip
    rec.meta["env_hash"] = env.signature_hash()
    return rec


def package_of_record(record: TaskRecord) -> Package:
    """The package (one task) a record carries, as it would be written to a folder."""
    files = record.environment.files
    manifest = json.loads(files["env.json"])
    info = record.meta.get("package", {})
    data_name = "data.sql" if "data.sql" in files else manifest.get("data", "data.json")
    data = files.get(data_name, "")
    task = PackageTask(id=str(info.get("task", record.task.task_id)), instruction=record.task.instruction,
                       solution_py=str(info.get("solution_py", "")), verify_py=record.verifier.program or "",
                       difficulty=record.task.difficulty)  # fmt: skip
    return Package(name=manifest.get("name", record.task.task_id), description=manifest.get("description", ""),
                   category=manifest.get("category", ""), data_name=data_name, data=data.encode(),
                   tools_py=files["tools.py"], tasks=[task],
                   extra={k: v for k, v in manifest.items() if k not in ("name", "description", "category", "data")})  # fmt: skip
