"""The synthesizer: an agentkit `Agent` that turns a one-line category into gated environment packages.

It follows DeepSeek-V3.2's five steps (report §3.2.3) in a sandbox of its own (the workbench): (1) build the data
and store it in a database, (2) write the tools, (3) propose a simple task with a solution that only calls tools
and a verifier, (4) repair solution or verifier until `check_package` keeps the task, (5) raise the difficulty
step by step, adding tools when the set no longer suffices. Its tools: `run_python` and `run_shell` in the workbench,
`write_file`/`read_file` under the package folder, and `check_package`, which copies the package out and runs every
gate in fresh sandboxes. Any backend works; thinking mode is asked for by default.

Per category the output folder gets `packages/<slug>/` (the package as written), `records/<slug>.jsonl` (one
record per kept task), `logs/<slug>.jsonl` (what was tried, and why each task was kept or dropped) and
`done/<slug>.json` (the summary that makes a re-run skip the category: resume after an interruption).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentkit.envs.errors import SpecError
from agentkit.envs.packages.format import Package, slug
from agentkit.envs.packages.gates import GateConfig, PackageReport, check_package
from agentkit.envs.spec import TaskRecord, iter_jsonl, write_jsonl

PKG = "/work/pkg"

SYSTEM_PROMPT = f"""You build verifiable tool-use environments for training agents, in a Linux sandbox.
Everything lives in the package folder {PKG}:
- env.json: {{"name", "description", "category", "data": "data.sqlite"}} (or "data.json" for JSON state)
- data.sqlite (or data.json): realistic data for the category, built with code you run
- tools.py: functions fn(db, **arguments) (db: a sqlite3 connection whose rows are dicts, or the JSON state to
  mutate in place); raise ValueError with a helpful message for a bad call; and SCHEMAS = {{name: {{"description",
  "parameters": JSON Schema of type object}}}}. No network, files, processes or randomness.
- tasks/<id>/task.json {{"instruction", "difficulty"}}, tasks/<id>/solution.py with solve(tools) that may ONLY call
  tools.<name>(**arguments) and compute (no imports beyond math/json/re/statistics/itertools/collections/datetime,
  no files, no database), and tasks/<id>/verify.py with verify(initial, final, answer) -> (bool, reason) over the
  states as JSON ({{table: [rows]}}) and the answer text.
Work in five steps: 1) build the data and store it in the database; 2) write the tools; 3) propose a simple task
with its solution and verifier; 4) call check_package and repair solution or verifier until the task is kept;
5) raise the difficulty step by step (more dependent tool calls, conditions, constraints), adding tools when the
set no longer suffices, checking each new task. The instruction must not state any value the solution looks up
(ids, prices found by search); the verifier must check the exact final state and the answer, so that doing
nothing, a wrong answer, a dropped or altered change all fail. Stop when the requested number of tasks is kept."""


@dataclass
class SynthConfig:
    n_tasks: int = 3
    """Tasks to keep per category."""
    max_turns: int = 60
    thinking: bool | None = True
    gates: GateConfig = field(default_factory=GateConfig)
    deadline: float | None = 1800.0


@dataclass
class CategoryResult:
    category: str
    slug: str
    status: str = "failed"
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    checks: int = 0
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    error: str | None = None


class CategoryLog:
    """`logs/<slug>.jsonl`: one event per line (tool calls, checks, the verdict on each task), appended as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, kind: str, **data: Any) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": round(time.time(), 3), "event": kind, **data}, ensure_ascii=False) + "\n")


def report_text(report: PackageReport) -> str:
    lines = [f"package {report.package}: {len(report.kept)} of {len(report.outcomes)} task(s) kept"]
    for o in report.outcomes:
        lines.append(f"- {o.task_id}: KEPT" if o.kept else f"- {o.task_id}: DISCARDED ({o.reason}): {o.detail}")
    return "\n".join(lines)


class Workbench:
    """The synthesizer's own sandbox and the tools it gets over it."""

    def __init__(self, sandbox: Any, category: str, log: CategoryLog, gates: GateConfig, pool: Any = None) -> None:
        self.sandbox, self.category, self.log, self.gates, self.pool = sandbox, category, log, gates, pool
        self.last: PackageReport | None = None
        self.checks = 0
        self.checkpoint: Callable[[Package, PackageReport], None] | None = None
        """Called after each check that keeps a task (the category's progress, for resuming)."""

    async def pull(self) -> Package:
        """Copy the package out of the workbench (files only; nothing is executed here) and read it."""
        import tempfile

        res = await self.sandbox.run_shell(f"cd {PKG} 2>/dev/null && find . -type f -size -16M | sort | head -300")
        with tempfile.TemporaryDirectory(prefix="agentkit-pkg-") as tmp:
            for rel in res.stdout.split():
                rel = rel.removeprefix("./")
                if ".." in rel.split("/"):
                    continue
                dest = Path(tmp) / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(await self.sandbox.get_file(f"{PKG}/{rel}"))
            pkg = Package.load(tmp)
        pkg.category = pkg.category or self.category
        return pkg

    def tools(self) -> list[Any]:
        from agentkit.errors import ToolError
        from agentkit.tools import Tool

        async def run_python(code: str) -> str:
            self.log.event("run_python", code=code[:2000])
            return _render(await self.sandbox.run_python(code))

        async def run_shell(command: str) -> str:
            self.log.event("run_shell", command=command[:2000])
            return _render(await self.sandbox.run_shell(command))

        async def write_file(path: str, content: str) -> str:
            rel = _rel(path)
            self.log.event("write_file", path=rel, chars=len(content))
            await self.sandbox.run_shell(f"mkdir -p '{PKG}/{Path(rel).parent}'")
            await self.sandbox.put_file(f"{PKG}/{rel}", content)
            return f"wrote {PKG}/{rel} ({len(content)} characters)"

        async def read_file(path: str) -> str:
            try:
                return (await self.sandbox.get_file(f"{PKG}/{_rel(path)}")).decode("utf-8", errors="replace")[:20000]
            except OSError as exc:
                raise ToolError(f"cannot read {path}: {exc}") from None

        async def check() -> str:
            self.checks += 1
            try:
                pkg = await self.pull()
            except SpecError as exc:
                self.log.event("check", ok=False, error=str(exc))
                raise ToolError(f"the package cannot be read yet: {exc}") from None
            self.last = await check_package(pkg, pool=self.pool, config=self.gates)
            if self.last.kept and self.checkpoint is not None:
                self.checkpoint(pkg, self.last)
            self.log.event("check", outcomes=[{"task": o.task_id, "kept": o.kept, "reason": o.reason,
                                               "detail": o.detail[:300]} for o in self.last.outcomes])  # fmt: skip
            return report_text(self.last)

        s = {"type": "object", "additionalProperties": False}
        return [
            Tool.from_schema("run_python", "Run Python 3 in the sandbox (state persists between calls; cwd /work).",
                             {**s, "properties": {"code": {"type": "string"}}, "required": ["code"]}, run_python),
            Tool.from_schema("run_shell", "Run a bash command in the sandbox (cwd /work).",
                             {**s, "properties": {"command": {"type": "string"}}, "required": ["command"]}, run_shell),
            Tool.from_schema("write_file", f"Write a text file under the package folder {PKG} (path relative to it).",
                             {**s, "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                              "required": ["path", "content"]}, write_file),
            Tool.from_schema("read_file", f"Read a text file under {PKG}.",
                             {**s, "properties": {"path": {"type": "string"}}, "required": ["path"]}, read_file),
            Tool.from_schema("check_package", "Run every gate on the package in fresh sandboxes; says per task whether "
                             "it is kept or why it was discarded.", {**s, "properties": {}}, check),
        ]  # fmt: skip


def _rel(path: str) -> str:
    rel = path.removeprefix(PKG).lstrip("/")
    if not rel or ".." in Path(rel).parts:
        raise ValueError(f"{path!r}: give a path inside {PKG}")
    return rel


def _render(result: Any) -> str:
    out = (result.stdout or "") + (("\n" + result.stderr) if result.stderr else "")
    if result.exc_type and result.exc_type not in out:
        out += f"\n{result.exc_type}: {result.exc_message}"
    if result.timed_out:
        out += "\n[timed out]"
    return out.strip()[-8000:] or f"(no output; exit code {result.exit_code})"


def task_prompt(category: str, n_tasks: int) -> str:
    return (f"Category: {category}\nBuild one environment package for this category and keep {n_tasks} task(s) of "
            f"rising difficulty (difficulty 1 to {max(n_tasks, 2)}).")  # fmt: skip


async def synthesize_category(backend: Any, category: str, out: Path, *, config: SynthConfig | None = None,
                              pool: Any = None) -> CategoryResult:  # fmt: skip
    """One category, start to finish; never raises for the model's or the package's failures (they are logged)."""
    from agentkit.loop import Agent
    from agentkit.sandbox import Sandbox, SandboxLimits

    cfg = config or SynthConfig()
    name = slug(category)
    log = CategoryLog(out / "logs" / f"{name}.jsonl")
    result = CategoryResult(category, name)
    t0 = time.monotonic()
    log.event("start", category=category, n_tasks=cfg.n_tasks)
    resumed, kept_before = _progress(out, name)
    try:
        async with Sandbox(SandboxLimits(timeout=60)) as sb:
            await sb.run_shell(f"mkdir -p {PKG}/tasks")
            bench = Workbench(sb, category, log, cfg.gates, pool)
            bench.checkpoint = lambda p, rep: _checkpoint(out, name, p, rep)
            prompt = task_prompt(category, cfg.n_tasks)
            if resumed is not None:  # an interrupted run kept some tasks: go on from its package
                for rel, data in resumed.sandbox_files().items():
                    await sb.run_shell(f"mkdir -p '{PKG}/{Path(rel).parent.as_posix()}'")
                    await sb.put_file(f"{PKG}/{rel}", data)
                log.event("resume", kept=kept_before)
                prompt += (f"\nResumed: the package in {PKG} already has {len(kept_before)} kept task(s): "
                           f"{', '.join(kept_before)}. Keep {max(cfg.n_tasks - len(kept_before), 0)} more.")  # fmt: skip
            if resumed is None or len(kept_before) < cfg.n_tasks:
                run = await Agent(backend, bench.tools(), system_prompt=SYSTEM_PROMPT, thinking=cfg.thinking,
                                  max_turns=cfg.max_turns, deadline=cfg.deadline).run(prompt)  # fmt: skip
                u = run.usage
                result.turns, result.cost = run.turns, run.cost
                result.prompt_tokens, result.completion_tokens = u.prompt_tokens, u.completion_tokens
                result.cache_hit_tokens = u.cache_hit_tokens
                log.event("agent_done", status=run.status, turns=run.turns, output=(run.output or "")[:500])
            pkg = await bench.pull()
            report = await check_package(pkg, pool=pool, config=cfg.gates)  # the final word, never the agent's
            result.checks = bench.checks + 1
        pkg.write(out / "packages" / name)
        records = report.kept[: cfg.n_tasks]
        (out / "records").mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "records" / f"{name}.jsonl", records)
        for o in report.outcomes:
            log.event("kept" if o.kept else "dropped", task=o.task_id, reason=o.reason, detail=o.detail[:500])
        result.kept, result.dropped = len(records), report.reasons()
        result.status = "done"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one category's failure never stops the others
        result.error = f"{type(exc).__name__}: {exc}"
        log.event("failed", error=result.error)
    result.seconds = time.monotonic() - t0
    if result.status == "done":
        (out / "done").mkdir(parents=True, exist_ok=True)
        (out / "done" / f"{name}.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    return result


def _checkpoint(out: Path, name: str, pkg: Package, report: PackageReport) -> None:
    """The package as it stands and its tasks kept so far: what a re-run of an interrupted category resumes from."""
    pkg.write(out / "progress" / name)
    (out / "progress" / f"{name}.json").write_text(json.dumps([o.task_id for o in report.outcomes if o.kept]),
                                                   encoding="utf-8")  # fmt: skip


def _progress(out: Path, name: str) -> tuple[Package | None, list[str]]:
    marker = out / "progress" / f"{name}.json"
    if not marker.is_file():
        return None, []
    try:
        return Package.load(out / "progress" / name), list(json.loads(marker.read_text(encoding="utf-8")))
    except (SpecError, ValueError):
        return None, []


def load_done(out: Path, category: str) -> CategoryResult | None:
    p = out / "done" / f"{slug(category)}.json"
    if not p.is_file():
        return None
    return CategoryResult(**json.loads(p.read_text(encoding="utf-8")))


def merge_records(out: Path, categories: list[str]) -> list[TaskRecord]:
    """Every kept record of the finished categories, in category order, into `out/tasks.jsonl`."""
    records: list[TaskRecord] = []
    for c in categories:
        p = out / "records" / f"{slug(c)}.jsonl"
        if p.is_file():
            records += [r for _, r in iter_jsonl(p) if isinstance(r, TaskRecord)]
    write_jsonl(out / "tasks.jsonl", records)
    return records


async def synthesize(backend: Any, categories: list[str], out: str | Path, *, config: SynthConfig | None = None,
                     concurrency: int = 2, pool: Any = None,
                     progress: Callable[[CategoryResult, bool], None] | None = None,
                     run_category: Callable[[str], Awaitable[CategoryResult]] | None = None,
                     ) -> list[CategoryResult]:  # fmt: skip
    """Every category (finished ones are skipped: resume), `concurrency` at a time; merged tasks in out/tasks.jsonl.
    `progress(result, resumed)` is called as each category ends. `run_category(category)`, when given, runs a
    category elsewhere and leaves its files under `out` (e.g. on a Ray cluster: `executors.ray_jobs`)."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any task starts
    sem = asyncio.Semaphore(concurrency)

    async def one(category: str) -> CategoryResult:
        done = load_done(root, category)
        if done is not None:
            if progress:
                progress(done, True)
            return done
        async with sem:
            if run_category is not None:
                res = await run_category(category)
            else:
                res = await synthesize_category(backend, category, root, config=config, pool=pool)
        if progress:
            progress(res, False)
        return res

    results = list(await asyncio.gather(*(one(c) for c in dict.fromkeys(categories))))
    merge_records(root, list(dict.fromkeys(categories)))
    return results
