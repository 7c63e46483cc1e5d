"""Hand-written wrong solutions, one kind per family, must fail the verifier: the verifiers check outcomes, so a
plausible but wrong action (wrong amount, wrong record, wrong slot, wrong value) cannot pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from agentkit.envs.generator import capabilities, generate
from agentkit.envs.runtime import ReferencePython, execute
from agentkit.envs.spec import Call, TaskRecord, ToolSpec


def _canon(spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    flat = dict(args)
    for key in spec.config.get("flatten", ()):
        flat.update(flat.pop(key, {}))
    return {spec.config["params"].get(k, k): v for k, v in flat.items()}


def _set(spec: ToolSpec, args: dict[str, Any], canon: str, value: Any) -> dict[str, Any]:
    """Return a copy of `args` with canonical argument `canon` set to `value` (nested or not)."""
    out = copy.deepcopy(args)
    actual = next(a for a, c in spec.config["params"].items() if c == canon)
    nest = spec.config.get("nest", {}).get(canon)
    (out.setdefault(nest, {}) if nest else out)[actual] = value
    return out


def _mutate(rec: TaskRecord, impl: str, change: Callable[[ToolSpec, dict[str, Any]], dict[str, Any]]) -> list[Call]:
    calls, done = [], False
    for c in rec.solution.calls:
        spec = rec.environment.tool(c.tool)
        assert spec is not None
        if not done and spec.impl == impl:
            calls.append(Call(c.tool, change(spec, c.arguments)))
            done = True
        else:
            calls.append(c)
    assert done
    return calls


def _other_id(rec: TaskRecord, coll_hint: str, not_in: set[str]) -> str:
    coll = rec.environment.bindings["collections"][coll_hint]
    return next(rid for rid in rec.environment.state[coll] if rid not in not_in)


def _ids_in(rec: TaskRecord) -> set[str]:
    return {v for c in rec.solution.calls for v in c.arguments.values() if isinstance(v, str)}


def ledger(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def off_by_a_cent(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        return _set(spec, a, "amount", round(_canon(spec, a)["amount"] + 0.01, 2))
    return _mutate(rec, "ledger.transfer", off_by_a_cent), rec.solution.answer


def inventory(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def one_more(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        return _set(spec, a, "quantity", _canon(spec, a)["quantity"] + 1)
    return _mutate(rec, "inventory.restock", one_more), rec.solution.answer


def calendar(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def later(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        h, m = map(int, _canon(spec, a)["start"].split(":"))
        return _set(spec, a, "start", f"{h + 1:02d}:{m:02d}")
    return _mutate(rec, "calendar.create", later), rec.solution.answer


def filesystem(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def elsewhere(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        return _set(spec, a, "destination", "/archive/misc/" + _canon(spec, a)["destination"].rsplit("/", 1)[1])
    return _mutate(rec, "filesystem.move", elsewhere), rec.solution.answer


def hr(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def wrong_person(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        return _set(spec, a, "id", _other_id(rec, "employees", _ids_in(rec)))
    return _mutate(rec, "kit.update", wrong_person), rec.solution.answer


def _switch_to_available(rec: TaskRecord, impl: str, coll: str, counter: str, canon: str) -> list[Call]:
    """Reserve another record that still has capacity (another flight, another book) instead of the right one."""
    f = rec.environment.bindings["fields"]
    pool = rec.environment.state[rec.environment.bindings["collections"][coll]]
    other = next(k for k, v in pool.items() if v[f[counter]] > 0 and k not in _ids_in(rec))
    return _mutate(rec, impl, lambda spec, a: _set(spec, a, canon, other))


def travel(rec: TaskRecord) -> tuple[list[Call], str | None]:
    return _switch_to_available(rec, "travel.book", "flights", "seats", "flight"), rec.solution.answer


def tickets(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def other_agent(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        return _set(spec, a, "agent", _other_id(rec, "agents", _ids_in(rec)))
    return _mutate(rec, "tickets.assign", other_agent), rec.solution.answer


def library(rec: TaskRecord) -> tuple[list[Call], str | None]:
    return _switch_to_available(rec, "library.checkout", "books", "copies", "book"), rec.solution.answer


def knowledge(rec: TaskRecord) -> tuple[list[Call], str | None]:
    def off_fact(spec: ToolSpec, a: dict[str, Any]) -> dict[str, Any]:
        c = _canon(spec, a)
        if "tier" in c:
            return _set(spec, a, "tier", "gold" if c["tier"] != "gold" else "bronze")
        key = "warranty" if "warranty" in c else "refund_limit"
        return _set(spec, a, key, c[key] + 6)
    return _mutate(rec, "kit.update", off_fact), rec.solution.answer


def dataset(rec: TaskRecord) -> tuple[list[Call], str | None]:
    """Answer from a plausible but wrong analysis: the same script without its filter."""
    code = next(c.arguments for c in rec.solution.calls if rec.environment.tool(c.tool).impl == "kit.python")  # type: ignore[union-attr]
    body = next(iter(code.values()))
    wrong = body.replace(" if r['category'] ==", " if r['category'] !=")
    out = ReferencePython().run_sync(wrong, rec.environment.files).strip()
    return list(rec.solution.calls), f"The average is {out}."


WRONG: dict[str, tuple[str, Callable[[TaskRecord], tuple[list[Call], str | None]]]] = {
    "ledger": ("ledger.transfer", ledger), "inventory": ("inventory.restock", inventory),
    "calendar": ("calendar.create", calendar), "filesystem": ("filesystem.move", filesystem),
    "hr": ("kit.update", hr), "travel": ("travel.book", travel), "tickets": ("tickets.assign", tickets),
    "library": ("library.checkout", library), "knowledge": ("kit.update", knowledge),
    "dataset": ("kit.python", dataset),
}


def _task_using(family: str, impl: str) -> TaskRecord:
    for s in generate(40, seed=7, fams=[family], difficulties=[2, 3]):
        rec = TaskRecord.from_json(s.line or "")
        if any(rec.environment.tool(c.tool).impl == impl for c in rec.solution.calls):  # type: ignore[union-attr]
            if family != "dataset" or "category" in rec.task.instruction and "average" in rec.task.instruction:
                return rec
    raise AssertionError(f"no {family} task uses {impl}")


@pytest.mark.parametrize("family", sorted(WRONG))
def test_wrong_solution_fails(family: str) -> None:
    impl, make = WRONG[family]
    rec = _task_using(family, impl)
    search, python = capabilities(rec.environment)
    calls, answer = make(rec)
    assert [c.arguments for c in calls] != [c.arguments for c in rec.solution.calls] or answer != rec.solution.answer
    trace = execute(rec.environment, calls, search=search, python=python)
    verdict = rec.verifier.check(trace.diff(), answer, trace.ws.get)
    assert not verdict.passed, family
    # ...while the reference, executed the same way, passes.
    ref = execute(rec.environment, rec.solution.calls, search=search, python=python)
    assert rec.verifier.check(ref.diff(), rec.solution.answer, ref.ws.get).passed


@pytest.mark.parametrize("family", sorted(WRONG))
def test_extra_change_is_collateral_damage(by_family: dict[str, list[TaskRecord]], family: str) -> None:
    """The reference's outcome plus one unrequested change to any untouched record fails as collateral damage."""
    checked = 0
    for rec in by_family[family]:
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, rec.solution.calls, search=search, python=python)
        diff = trace.diff()
        for coll, records in rec.environment.state.items():
            victim = next((rid for rid in records if rid not in diff["changed"].get(coll, {})
                           and rid not in diff["deleted"].get(coll, [])), None)
            if victim is None:
                continue
            field, value = next((k, v) for k, v in records[victim].items() if isinstance(v, str | int | float))
            trace.ws.update(coll, victim, {field: value + 1 if not isinstance(value, str) else value + "x"})
            verdict = rec.verifier.check(trace.diff(), rec.solution.answer, trace.ws.get)
            assert not verdict.passed
            assert any(f.startswith(f"collateral change: {coll}/{victim}") for f in verdict.failures)
            checked += 1
            break
    assert checked == len(by_family[family])
