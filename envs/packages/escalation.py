"""Escalation from the solved ones: after a solver measured a category's kept tasks, every task it solved in all
k attempts goes back to the synthesizer agent, which writes a harder variant (adding tools if needed) in a
workbench seeded with the category's package. The variant is gated like any task, measured by the same solver,
and kept when its pass rate lies in the band; a variant still solved always is escalated again, up to `rounds`
rounds; one never solved, or discarded by the gates, ends the chain. Every round is logged in
`logs/<category>.jsonl` (`escalate` events: task, round, variant, outcome and reason); kept variants are appended
to `records/<category>.jsonl` and written into `packages/<category>/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.envs.packages.difficulty import Band, measure
from agentkit.envs.packages.format import Package, package_of_record, slug
from agentkit.envs.packages.gates import GateConfig
from agentkit.envs.spec import TaskRecord, iter_jsonl, write_jsonl

ESCALATE_PROMPT = """Category: {category}
The package in {pkg} already has task {task}, and the solver solved it in every one of its {k} attempts: it is too
easy. Write a harder variant as a NEW task tasks/{new}/ (task.json, solution.py, verify.py): more dependent tool
calls, conditions or constraints, a state change where there was none. Add or extend tools in tools.py if the
current ones do not suffice, keeping the existing tools working. Call check_package until tasks/{new} is kept, then
stop. The task now:
instruction: {instruction}
solution.py:
{solution}"""


@dataclass
class EscalationConfig:
    rounds: int = 2
    """Variants tried per solved task, each harder than the last."""
    k: int = 4
    band: Band = field(default_factory=Band)
    concurrency: int = 2
    max_turns: int = 30
    thinking: bool | None = True
    gates: GateConfig = field(default_factory=GateConfig)
    deadline: float | None = 900.0


@dataclass
class EscalationStep:
    task: str
    round: int
    variant: str
    outcome: str
    """kept | still_solved | too_hard | discarded | not_written"""
    reason: str
    rate: float | None = None


MeasureFn = Callable[..., Awaitable[tuple[list[TaskRecord], dict[str, float]]]]


async def escalate_category(backend: Any, category: str, out: str | Path, factory: Any, *,
                            config: EscalationConfig | None = None, pool: Any = None,
                            measure_fn: MeasureFn = measure) -> list[EscalationStep]:  # fmt: skip
    """Escalate the category's tasks that the solver (`factory`, an eval `AgentFactory`) always solves."""
    from agentkit.envs.packages.synthesizer import CategoryLog

    cfg = config or EscalationConfig()
    root, name = Path(out), slug(category)
    log = CategoryLog(root / "logs" / f"{name}.jsonl")
    records = [r for _, r in iter_jsonl(root / "records" / f"{name}.jsonl") if isinstance(r, TaskRecord)]
    copies = [TaskRecord.from_json(r.to_json()) for r in records]  # measuring must not touch the stored records
    _, rates = await measure_fn(copies, factory, k=cfg.k, band=cfg.band, concurrency=cfg.concurrency,
                                sandbox_pool=pool)  # fmt: skip
    steps: list[EscalationStep] = []
    for rec in records:
        rate = rates.get(rec.task.task_id)
        if rate is None or rate < 1.0:
            log.event("escalate_skip", task=_task_id(rec), rate=rate, reason="not solved always")
            continue
        base = rec
        for rnd in range(1, cfg.rounds + 1):
            step, cand = await _one_round(backend, factory, category, root, base, rnd, cfg, pool, measure_fn, log)
            steps.append(step)
            if step.outcome != "still_solved":
                break
            assert cand is not None
            base = cand
    return steps


async def _one_round(backend: Any, factory: Any, category: str, root: Path, base: TaskRecord, rnd: int,
                     cfg: EscalationConfig, pool: Any, measure_fn: MeasureFn,
                     log: Any) -> tuple[EscalationStep, TaskRecord | None]:  # fmt: skip
    origin = str(base.meta.get("escalated_from") or _task_id(base))
    new = f"{origin}-h{rnd}"
    step = EscalationStep(origin, rnd, new, "discarded", "")
    try:
        cand, pkg = await _variant(backend, category, root, base, new, cfg, pool, log)
    except _NoVariant as exc:
        step.outcome, step.reason = exc.outcome, str(exc)
        log.event("escalate", **_fields(step))
        return step, None
    cand.meta.update(escalated_from=origin, escalation_round=rnd)
    kept, rates = await measure_fn([cand], factory, k=cfg.k, band=cfg.band, concurrency=cfg.concurrency,
                                   sandbox_pool=pool)  # fmt: skip
    step.rate = rates.get(cand.task.task_id)
    if kept:
        step.outcome, step.reason = "kept", f"pass rate {step.rate:.2f} in the band"
        _keep(root, category, kept[0], pkg, new)
    elif step.rate is not None and step.rate >= 1.0:
        step.outcome, step.reason = "still_solved", f"pass rate {step.rate:.2f}: still solved always"
    else:
        step.outcome = "too_hard"
        step.reason = "no valid attempt" if step.rate is None else f"pass rate {step.rate:.2f}: outside the band"
    log.event("escalate", **_fields(step))
    return step, (cand if step.outcome == "still_solved" else None)


def _task_id(rec: TaskRecord) -> str:
    return str(rec.meta.get("package", {}).get("task", rec.task.task_id))


def _fields(step: EscalationStep) -> dict[str, Any]:
    return {"task": step.task, "round": step.round, "variant": step.variant, "outcome": step.outcome,
            "reason": step.reason, "rate": step.rate}  # fmt: skip


class _NoVariant(Exception):
    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome


async def _variant(backend: Any, category: str, root: Path, base: TaskRecord, new: str, cfg: EscalationConfig,
                   pool: Any, log: Any) -> tuple[TaskRecord, Package]:  # fmt: skip
    """The agent writes tasks/<new>/ in a workbench seeded with the package; the variant alone is gated."""
    from agentkit.envs.packages.gates import check_package
    from agentkit.envs.packages.synthesizer import PKG, SYSTEM_PROMPT, Workbench
    from agentkit.loop import Agent
    from agentkit.sandbox import Sandbox, SandboxLimits

    folder = root / "packages" / slug(category)
    seed = Package.load(folder) if (folder / "tools.py").is_file() else package_of_record(base)
    info = base.meta.get("package", {})
    async with Sandbox(SandboxLimits(timeout=60)) as sb:
        for rel, data in seed.sandbox_files().items():
            await sb.run_shell(f"mkdir -p '{PKG}/{Path(rel).parent.as_posix()}'")
            await sb.put_file(f"{PKG}/{rel}", data)
        bench = Workbench(sb, category, log, cfg.gates, pool)
        agent = Agent(backend, bench.tools(), system_prompt=SYSTEM_PROMPT, thinking=cfg.thinking,
                      max_turns=cfg.max_turns, deadline=cfg.deadline)  # fmt: skip
        prompt = ESCALATE_PROMPT.format(category=category, pkg=PKG, task=info.get("task", base.task.task_id), k=cfg.k,
                                        new=new, instruction=base.task.instruction,
                                        solution=info.get("solution_py", ""))  # fmt: skip
        await agent.run(prompt)
        pkg = await bench.pull()
    try:
        task = pkg.task(new)
    except KeyError:
        raise _NoVariant("not_written", f"the agent wrote no tasks/{new}/") from None
    pkg.tasks = [task]
    report = await check_package(pkg, pool=pool, config=cfg.gates)
    if not report.kept:
        o = report.outcomes[0]
        raise _NoVariant("discarded", f"gates: {o.reason}: {o.detail[:300]}")
    return report.kept[0], pkg


def _keep(root: Path, category: str, record: TaskRecord, pkg: Package, new: str) -> None:
    name = slug(category)
    path = root / "records" / f"{name}.jsonl"
    records = [r for _, r in iter_jsonl(path) if isinstance(r, TaskRecord)] if path.is_file() else []
    write_jsonl(path, records + [record])
    folder = root / "packages" / name
    current = Package.load(folder) if (folder / "tools.py").is_file() else pkg
    current.tools_py = pkg.tools_py  # the variant may have added tools; earlier records carry their own copy
    current.tasks = [t for t in current.tasks if t.id != new] + [pkg.task(new)]
    current.write(folder)


async def escalate(backend: Any, categories: list[str], out: str | Path, factory: Any, *,
                   config: EscalationConfig | None = None, pool: Any = None,
                   measure_fn: MeasureFn = measure) -> dict[str, list[EscalationStep]]:  # fmt: skip
    """`escalate_category` for each category, one after another (each measures with the shared pool)."""
    return {c: await escalate_category(backend, c, out, factory, config=config, pool=pool, measure_fn=measure_fn)
            for c in dict.fromkeys(categories)}  # fmt: skip
