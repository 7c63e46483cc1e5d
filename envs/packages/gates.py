"""The gates a package's task passes before it is kept, executed for real in fresh sandboxes.

Each discarded task has one named reason (`REASONS`). Per package: its code is read first (`static`), then it is
installed in a fresh sandbox where every execution is a fresh interpreter under the harness's audit hook, and the
determinism re-run happens in a second fresh sandbox. Nothing a package wrote ever runs on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from agentkit.envs.packages import static
from agentkit.envs.packages.box import GateOutput, GateTimeout, install, run_op
from agentkit.envs.packages.format import Package, PackageTask, to_record
from agentkit.envs.spec import TaskRecord, canonical_json, numbers_in

REASONS = {
    "load": "the package does not load (manifest, syntax, missing functions)",
    "schema": "a tool's JSON Schema is invalid",
    "escape": "code reaches outside the package (network, processes, files, interpreter internals)",
    "direct_access": "the solution reaches the data without the tools",
    "solution_error": "the solution raises",
    "solution_fails": "the solution does not pass its verifier",
    "verifier_error": "the verifier crashes",
    "trivial": "doing nothing passes the verifier",
    "wrong_answer": "a wrong answer passes the verifier",
    "vacuous": "a dropped state-changing call or a perturbed argument passes the verifier",
    "nondeterministic": "two runs differ in calls, results, final state or verdict",
    "leak": "the instruction states a value the solution had to look up",
    "timeout": "an execution ran past its time cap",
    "output_cap": "a tool result or an execution's output is over its cap",
}


@dataclass
class GateConfig:
    exec_timeout: float = 20.0
    """Seconds per execution in the sandbox (a hanging tool is stopped here)."""
    max_perturbations: int = 12
    limits: Any = None
    """`SandboxLimits` for the gate sandboxes (None: the defaults)."""


@dataclass
class TaskOutcome:
    task_id: str
    kept: bool
    reason: str | None = None
    detail: str = ""
    record: TaskRecord | None = None


@dataclass
class PackageReport:
    package: str
    outcomes: list[TaskOutcome] = field(default_factory=list)
    seconds: float = 0.0
    gate_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> list[TaskRecord]:
        return [o.record for o in self.outcomes if o.kept and o.record is not None]

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            if not o.kept and o.reason:
                out[o.reason] = out.get(o.reason, 0) + 1
        return out


class Discard(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@contextlib.asynccontextmanager
async def fresh_sandbox(pool: Any = None, limits: Any = None) -> AsyncIterator[Any]:
    """A fresh sandbox from `pool` (released sandboxes are destroyed, never reused) or started here."""
    if pool is not None:
        async with pool.sandbox() as sb:
            yield sb
        return
    from agentkit.sandbox import Sandbox

    async with Sandbox(limits) as sb:
        yield sb


# ---------------------------------------------------------------------------------------------------------------------
# Analysis of a reference run (host side: data only)


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, str(k))]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v, key)]
    return [(key, value)] if isinstance(value, str | int | float) and not isinstance(value, bool) else []


def _significant(v: Any) -> bool:
    if isinstance(v, str):
        return len(v.strip()) >= 3
    return len(re.sub(r"[^0-9]", "", f"{v}")) >= 2


def _mentions(text: str, v: Any) -> bool:
    if isinstance(v, str):
        return re.search(rf"(?<![\w]){re.escape(v.strip().casefold())}(?![\w])", text.casefold()) is not None
    return any(abs(n - float(v)) < 1e-9 for n in numbers_in(text))


def looked_up(calls: list[dict[str, Any]], answer: str | None) -> list[tuple[str, Any]]:
    """(key, value) first seen in a tool's result, then used in a later call's arguments or in the answer."""
    given: set[str] = set()
    seen: dict[str, tuple[str, Any]] = {}
    used: dict[str, tuple[str, Any]] = {}
    for c in calls:
        for _, v in _leaves(c["args"]):
            js = json.dumps(v)
            if js in seen:
                used[js] = seen[js]
            else:
                given.add(js)
        for k, v in _leaves(c["result"]):
            js = json.dumps(v)
            if js not in given and js not in seen and _significant(v):
                seen[js] = (k, v)
    if answer:
        used.update({js: kv for js, kv in seen.items() if _mentions(answer, kv[1])})
    return list(used.values())


def _others(calls: list[dict[str, Any]], key: str, value: Any) -> list[Any]:
    """Other values a result gave under the same key: the plausible wrong choices."""
    out: list[Any] = []
    for c in calls:
        for k, v in _leaves(c["result"]):
            if k == key and v != value and type(v) is type(value) and v not in out:
                out.append(v)
    return out


def wrong_answers(answer: str | None, calls: list[dict[str, Any]]) -> list[str]:
    """Plausible wrong answers: none at all, and the answer with every number and every looked-up name wrong."""
    if answer is None or not answer.strip():
        return []
    wrong = answer
    for key, value in looked_up(calls, answer):
        others = _others(calls, key, value)
        if isinstance(value, str) and others and _mentions(wrong, value):
            wrong = re.sub(re.escape(value), str(others[0]), wrong, flags=re.IGNORECASE)
    wrong = re.sub(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)", lambda m: _bump(m.group(0)), wrong)
    return list(dict.fromkeys(o for o in ("I could not find that.", wrong) if o != answer))


def _bump(num: str) -> str:
    return str(int(num) + 1) if re.fullmatch(r"-?\d+", num) else f"{float(num) + 1.5:.2f}"


def perturb(value: Any, key: str, calls: list[dict[str, Any]]) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return [value + 1]
    if isinstance(value, str):
        return [*(_others(calls, key, value)[:1]), value + "x"]
    if isinstance(value, list) and value:
        return [value[:-1]]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# The gates


def _violation(out: dict[str, Any]) -> Discard | None:
    for v in out.get("violations", []):
        return Discard(v["kind"], f"{v['what']} (while the {v['phase']} ran)")
    return None


def static_findings(pkg: Package) -> dict[str, Discard]:
    """Package-level findings under the key "*" and per-task ones under the task id."""
    found: dict[str, Discard] = {}
    for f in static.scan(pkg.tools_py, "tools.py"):
        found.setdefault("*", Discard(f.gate, str(f)))
    for t in pkg.tasks:
        for f in [*static.scan(t.solution_py, f"tasks/{t.id}/solution.py", solution=True),
                  *static.scan_verifier(t.verify_py, f"tasks/{t.id}/verify.py")]:  # fmt: skip
            found.setdefault(t.id, Discard(f.gate, str(f)))
    return found


class _Clock:
    def __init__(self, report: PackageReport) -> None:
        self.report = report

    async def op(self, gate: str, sb: Any, op: str, inp: dict[str, Any], cfg: GateConfig) -> dict[str, Any]:
        try:
            out, secs = await run_op(sb, op, inp, timeout=cfg.exec_timeout)
        except GateTimeout as exc:
            raise Discard("timeout", f"{gate}: {exc}") from None
        except GateOutput as exc:
            raise Discard("output_cap", f"{gate}: {exc}") from None
        self.report.gate_seconds[gate] = self.report.gate_seconds.get(gate, 0.0) + secs
        if "fatal" in out:
            violation = _violation(out)
            raise Discard(violation.reason if violation else "load", f"{gate}: {out['fatal']}")
        return out


async def check_package(pkg: Package, *, pool: Any = None, config: GateConfig | None = None) -> PackageReport:
    """Run every gate over every task of `pkg`; the report holds a record per kept task and a reason per discard."""
    cfg = config or GateConfig()
    report = PackageReport(pkg.name)
    t0 = time.monotonic()
    found = static_findings(pkg)
    if "*" in found:
        report.outcomes = [TaskOutcome(t.id, False, found["*"].reason, found["*"].detail) for t in pkg.tasks]
        report.seconds = time.monotonic() - t0
        return report
    clock = _Clock(report)
    runs: dict[str, dict[str, Any]] = {}
    pending: list[PackageTask] = []
    async with fresh_sandbox(pool, cfg.limits) as sb:
        await install(sb, pkg.sandbox_files())
        try:
            loaded = await clock.op("load", sb, "load", {}, cfg)
            _check_load(loaded)
        except Discard as d:
            report.outcomes = [TaskOutcome(t.id, False, d.reason, d.detail) for t in pkg.tasks]
            report.seconds = time.monotonic() - t0
            return report
        for t in pkg.tasks:
            if t.id in found:
                report.outcomes.append(TaskOutcome(t.id, False, found[t.id].reason, found[t.id].detail))
                continue
            try:
                runs[t.id] = await _gate_task(clock, sb, t, loaded, cfg)
                pending.append(t)
            except Discard as d:
                report.outcomes.append(TaskOutcome(t.id, False, d.reason, d.detail))
    if pending:  # the determinism re-run, in a second fresh sandbox
        async with fresh_sandbox(pool, cfg.limits) as sb2:
            await install(sb2, pkg.sandbox_files())
            for t in pending:
                try:
                    again = await clock.op("determinism", sb2, "run", {"task": t.id}, cfg)
                    _same(runs[t.id], again)
                    hidden = _leaks(t.instruction, runs[t.id])
                    writes = {c["tool"] for c in runs[t.id]["calls"] if c.get("changed")}
                    rec = to_record(pkg, t, runs[t.id], schemas=loaded["schemas"], sql=loaded.get("sql"),
                                    hidden=hidden, writes=writes)  # fmt: skip
                    report.outcomes.append(TaskOutcome(t.id, True, record=rec))
                except Discard as d:
                    report.outcomes.append(TaskOutcome(t.id, False, d.reason, d.detail))
    order = {t.id: i for i, t in enumerate(pkg.tasks)}
    report.outcomes.sort(key=lambda o: order.get(o.task_id, 0))
    report.seconds = time.monotonic() - t0
    return report


def _check_load(loaded: dict[str, Any]) -> None:
    if loaded.get("missing"):
        raise Discard("load", f"SCHEMAS names functions tools.py does not define: {loaded['missing']}")
    if not loaded.get("schemas"):
        raise Discard("load", "tools.py defines no SCHEMAS (name -> description and parameters)")
    for name, spec in loaded["schemas"].items():
        params = spec.get("parameters") if isinstance(spec, dict) else None
        if not isinstance(params, dict) or params.get("type") != "object":
            raise Discard("schema", f"tool {name!r}: parameters must be a JSON Schema of type object")
        if not isinstance(spec.get("description"), str) or not spec["description"].strip():
            raise Discard("schema", f"tool {name!r} has no description")
        try:
            jsonschema.Draft202012Validator.check_schema(params)
        except jsonschema.SchemaError as exc:
            raise Discard("schema", f"tool {name!r}: {exc.message}") from None


async def _gate_task(clock: _Clock, sb: Any, t: PackageTask, loaded: dict[str, Any], cfg: GateConfig) -> dict[str, Any]:
    run = await clock.op("solution", sb, "run", {"task": t.id}, cfg)
    if (v := _violation(run)) is not None:
        raise v
    if any(c.get("output_cap") for c in run["calls"]):
        raise Discard("output_cap", "a tool result is over the cap")
    if run["error"]:
        raise Discard("solution_error", run["error"])
    if run["verdict"].get("crashed"):
        raise Discard("verifier_error", run["verdict"]["reason"])
    if not run["verdict"]["passed"]:
        raise Discard("solution_fails", run["verdict"]["reason"] or "the verifier rejected the reference")
    recorded = [{k: c[k] for k in ("tool", "args", "result", "error")} for c in run["calls"]]
    cf = await clock.op("data_only_through_tools", sb, "counterfactual",
                        {"task": t.id, "recorded": recorded, "tools": sorted(loaded["schemas"])}, cfg)  # fmt: skip
    if (v := _violation(cf)) is not None:
        raise v
    ref_calls = [{"tool": c["tool"], "args": c["args"]} for c in run["calls"]]
    if cf["error"] or cf["calls"] != ref_calls or cf["answer"] != run["answer"]:
        raise Discard("direct_access", "without the data, answered from the tools' recorded results, the solution "
                      f"behaves differently ({cf['error'] or 'other calls or answer'})")  # fmt: skip
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("trivial", "no calls and no answer pass", {"calls": [], "answer": None}),
        ("trivial", "no calls and an empty answer pass", {"calls": [], "answer": ""}),
    ]
    for w in wrong_answers(run["answer"], run["calls"]):
        variants.append(("wrong_answer", f"the answer {w!r} passes", {"calls": ref_calls, "answer": w}))
    perturbations = 0
    for i, c in enumerate(run["calls"]):
        if not c.get("changed"):
            continue
        drop = ref_calls[:i] + ref_calls[i + 1:]
        variants.append(("vacuous", f"dropping call {i + 1} ({c['tool']}) passes", {"calls": drop, "answer": run["answer"]}))
        for key, value in c["args"].items():
            for p in perturb(value, key, run["calls"]):
                if perturbations >= cfg.max_perturbations:
                    break
                perturbations += 1
                calls = [dict(x) for x in ref_calls]
                calls[i] = {"tool": c["tool"], "args": {**c["args"], key: p}}
                variants.append(("vacuous", f"call {i + 1} ({c['tool']}) with {key}={p!r} instead of {value!r} passes",
                                 {"calls": calls, "answer": run["answer"], "perturbed": True}))  # fmt: skip
    out = await clock.op("non_vacuous", sb, "replay", {"task": t.id, "variants": [v[2] for v in variants]}, cfg)
    if (v := _violation(out)) is not None:
        raise v
    for (reason, what, variant), res in zip(variants, out["results"], strict=True):
        if res.get("crashed"):
            raise Discard("verifier_error", f"on a variant ({what.removesuffix(' passes')}): {res['reason']}")
        same_outcome = variant.get("perturbed") and res["state_hash"] == run["state_hash"]
        if res["passed"] and not same_outcome:
            raise Discard(reason, what)
    return run


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    if (v := _violation(b)) is not None:
        raise v

    def key(run: dict[str, Any]) -> str:
        calls = [{k: c.get(k) for k in ("tool", "args", "result", "error")} for c in run["calls"]]
        return canonical_json([calls, run["answer"], run["state_hash"], (run.get("verdict") or {}).get("passed")])

    if key(a) != key(b):
        first = next((i for i, (x, y) in enumerate(zip(a["calls"], b["calls"], strict=False))
                      if canonical_json(x.get("result")) != canonical_json(y.get("result"))), None)  # fmt: skip
        where = f"call {first + 1} ({a['calls'][first]['tool']}) returned different results" if first is not None \
            else "the final state, answer or verdict differ"
        raise Discard("nondeterministic", f"two runs in fresh sandboxes differ: {where}")


def _leaks(instruction: str, run: dict[str, Any]) -> list[str]:
    hidden = looked_up(run["calls"], run["answer"])
    for _, v in hidden:
        if _mentions(instruction, v):
            raise Discard("leak", f"the instruction states {v!r}, which the solution looked up")
    if run["answer"] and _significant(run["answer"]) and run["answer"].strip().casefold() in instruction.casefold():
        raise Discard("leak", "the instruction contains the answer")
    return [str(v) for _, v in hidden]


async def check_packages(pkgs: list[Package], *, concurrency: int = 2, pool: Any = None,
                         config: GateConfig | None = None) -> list[PackageReport]:  # fmt: skip
    sem = asyncio.Semaphore(concurrency)

    async def one(p: Package) -> PackageReport:
        async with sem:
            return await check_package(p, pool=pool, config=config)

    return list(await asyncio.gather(*(one(p) for p in pkgs)))
