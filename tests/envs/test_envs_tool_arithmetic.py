"""Arithmetic and choices the tools do for the agent: a listing's `sum_of` adds a field up over every match (all
pages), the calendar's delay tool pushes a meeting back by minutes, the inventory changes a price by a percentage and
the tickets assign by an agent's name. References use them, so an agent copies one number from a
result instead of adding a list or walking a clock; wrong uses fail loudly and wrong references fail the verifier."""

from __future__ import annotations

import pytest

from agentkit.envs.errors import ToolCallError
from agentkit.envs.families._kit import paginate
from agentkit.envs.families.calendar.model import hm, minutes
from agentkit.envs.generator import capabilities, generate_records
from agentkit.envs.runtime import Trace, execute
from agentkit.envs.spec import Call, TaskRecord

HITS = [{"id": f"R-{i}", "amount": 10.25 * i, "n": i} for i in range(1, 26)]


@pytest.mark.parametrize("style", ["page", "offset", "cursor", None])
def test_sum_of_adds_up_every_match_not_only_the_page(style: str | None) -> None:
    cfg = {"page_size": 10, "paging": style, "items_key": "items", "sums": ["amount", "n"]}
    first = paginate(cfg, HITS, {"sum_of": "amount"})
    assert first["sum"] == round(sum(h["amount"] for h in HITS), 2) == 3331.25
    assert len(first["items"]) == (25 if style is None else 10)
    assert paginate(cfg, HITS, {"sum_of": "n"})["sum"] == 325
    assert "sum" not in paginate(cfg, HITS, {})


def test_sum_of_an_unsummable_field_says_which_fields_are() -> None:
    cfg = {"page_size": 10, "paging": "page", "items_key": "items", "sums": ["amount"]}
    with pytest.raises(ToolCallError, match="cannot add up 'id'; summable: amount"):
        paginate(cfg, HITS, {"sum_of": "id"})
    with pytest.raises(ToolCallError, match="summable: none"):
        paginate({**cfg, "sums": []}, HITS, {"sum_of": "amount"})


def _sum_records() -> list[tuple[TaskRecord, int]]:
    records = generate_records(160, 5151, ["hr", "filesystem", "inventory", "travel"], (1, 2))
    out = []
    for rec in records:
        for i, call in enumerate(rec.solution.calls):
            spec = rec.environment.tool(call.tool)
            assert spec is not None
            if "sum_of" in {spec.config["params"].get(k) for k in call.arguments}:
                out.append((rec, i))
    return out


def _run(rec: TaskRecord, calls: list[Call] | None = None) -> Trace:
    """Execute `calls` (by default the reference's) in the task's environment, with its search and python."""
    search, python = capabilities(rec.environment)
    return execute(rec.environment, rec.solution.calls if calls is None else calls, search=search, python=python)


def _passes(rec: TaskRecord, trace: Trace, answer: str | None = None) -> bool:
    """Whether the task's verifier accepts the trace's state change with `answer` (by default the reference's)."""
    return rec.verifier.check(trace.diff(), rec.solution.answer if answer is None else answer, trace.ws.get).passed


def test_a_sum_reference_is_one_listing_whose_sum_the_answer_copies() -> None:
    found = _sum_records()
    assert {rec.task.family for rec, _ in found} == {"hr", "filesystem", "inventory", "travel"}
    for rec, i in found:
        trace = _run(rec)
        value = trace.results[i].value
        spec = rec.environment.tool(rec.solution.calls[i].tool)
        assert spec is not None
        field = next(v for k, v in rec.solution.calls[i].arguments.items() if spec.config["params"][k] == "sum_of")
        assert field in spec.parameters["properties"][next(
            k for k, c in spec.config["params"].items() if c == "sum_of")]["enum"]
        if value["total"] <= len(value[spec.config["items_key"]]):  # one page: the sum is checkable by hand
            assert value["sum"] == round(sum(it[field] for it in value[spec.config["items_key"]]), 2)
        answer = rec.solution.answer
        assert answer and str(value["sum"]) in answer, (answer, value["sum"])
        assert _passes(rec, trace, answer)
        wrong = answer.replace(str(value["sum"]), str(round(value["sum"] + 1, 2)))
        assert not _passes(rec, trace, wrong), wrong


def _uses(family: str, impl: str, seed: int, n: int = 200) -> list[tuple[TaskRecord, int]]:
    """(task, index) of every reference call to the tool `impl` in `n` tasks of one family."""
    records = generate_records(n, seed, [family], (1, 2))
    return [(rec, i) for rec in records for i, c in enumerate(rec.solution.calls)
            if (s := rec.environment.tool(c.tool)) is not None and s.impl == impl]


def _delays() -> list[tuple[TaskRecord, int]]:
    return _uses("calendar", "calendar.delay", 6161, n=120)


def _events(value: dict) -> list[dict]:
    """The event records in a listing's page or a look-up's result."""
    pages = [v for v in value.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    return pages[0] if pages else [value]


def _arg(rec: TaskRecord, call: Call, canon: str) -> tuple[str, object]:
    spec = rec.environment.tool(call.tool)
    assert spec is not None
    return next((k, v) for k, v in call.arguments.items() if spec.config["params"][k] == canon)


def _replace_arg(rec: TaskRecord, i: int, canon: str, value: object) -> list[Call]:
    """The reference's calls with argument `canon` of call `i` set to `value`."""
    key, _ = _arg(rec, rec.solution.calls[i], canon)
    return [c if j != i else Call(c.tool, {**c.arguments, key: value}) for j, c in enumerate(rec.solution.calls)]


def test_a_push_back_reference_delays_by_the_minutes_and_keeps_the_length() -> None:
    found = _delays()
    assert len(found) >= 5
    for rec, i in found:
        trace = _run(rec)
        moved = trace.results[i].value["event"]
        _, shift = _arg(rec, rec.solution.calls[i], "minutes")
        start, end = sorted(v for v in moved.values() if isinstance(v, str) and len(v) == 5 and v[2] == ":")
        before = trace.results[i - 1].value  # the listing or look-up that found the meeting
        old = next(sorted(v for v in e.values() if isinstance(v, str) and len(v) == 5 and v[2] == ":")
                   for e in _events(before) if moved["id"] in e.values())
        assert f"It starts at {old[0]}; pushing it back by {shift} minutes." == rec.solution.calls[i].thought
        assert start == hm(minutes(old[0]) + int(shift)), (moved, old, shift)  # type: ignore[call-overload]
        assert minutes(end) - minutes(start) == minutes(old[1]) - minutes(old[0])
        assert _passes(rec, trace)
        # 30 minutes more is a different slot: the verifier says no (or the tool refuses it)
        wrong = _run(rec, _replace_arg(rec, i, "minutes", int(shift) + 30))  # type: ignore[call-overload]
        assert wrong.results[i].is_error or not _passes(rec, wrong)


def test_a_delay_past_office_hours_or_by_nothing_is_refused_with_a_reason() -> None:
    rec, i = _delays()[0]
    call = rec.solution.calls[i]
    key, _ = _arg(rec, call, "minutes")
    for minutes_, reason in ((600, "between 09:00 and 17:00"), (0, "must be >= 1")):
        trace = _run(rec, [*rec.solution.calls[:i], Call(call.tool, {**call.arguments, key: minutes_})])
        assert trace.results[i].is_error and reason in str(trace.results[i].content), trace.results[i].content


def test_a_price_change_by_percentage_rounds_half_up_to_cents_and_the_other_direction_fails() -> None:
    found = _uses("inventory", "inventory.adjust_price", 6262)
    assert len(found) >= 10
    for rec, i in found:
        trace = _run(rec)
        out = trace.results[i].value
        _, direction = _arg(rec, rec.solution.calls[i], "direction")
        _, pct = _arg(rec, rec.solution.calls[i], "percent")
        cents = round(out["old_price"] * 100) * (100 + pct if direction == "raise" else 100 - pct)  # type: ignore
        assert out["price"] == (cents + 50) // 100 / 100, (out, direction, pct)
        assert _passes(rec, trace)
        flipped = "cut" if direction == "raise" else "raise"
        assert not _passes(rec, _run(rec, _replace_arg(rec, i, "direction", flipped)))


def test_a_price_change_by_nothing_or_by_everything_is_refused_with_a_reason() -> None:
    rec, i = _uses("inventory", "inventory.adjust_price", 6262)[0]
    for pct in (0, 100):
        trace = _run(rec, _replace_arg(rec, i, "percent", pct))
        assert trace.results[i].is_error, trace.results[i].content
        assert "percent" in str(trace.results[i].content)


def test_an_assign_by_name_finds_the_agent_and_an_unknown_name_is_refused_with_a_reason() -> None:
    found = _uses("tickets", "tickets.assign_named", 6161)
    assert len(found) >= 5
    for rec, i in found:
        trace = _run(rec)
        _, name = _arg(rec, rec.solution.calls[i], "agent_name")
        assert trace.results[i].value["assignee"] == name
        assert _passes(rec, trace)
        shouted = _run(rec, _replace_arg(rec, i, "agent_name", f" {str(name).upper()} "))  # other case, spacing
        assert _passes(rec, shouted)
    rec, i = found[0]
    trace = _run(rec, _replace_arg(rec, i, "agent_name", "Nobody Atall"))
    assert trace.results[i].is_error and "no agent is named 'Nobody Atall'" in str(trace.results[i].content)
    assert not _passes(rec, trace)
