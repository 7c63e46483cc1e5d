"""The calculator every environment has: exact arithmetic for sums and percentages, nothing else, and reference
solutions that use it (so trajectories show an agent copying values into an expression instead of adding in its
head)."""

from __future__ import annotations

import pytest

from agentkit.envs.errors import ToolCallError
from agentkit.envs.families._kit import evaluate_arithmetic
from agentkit.envs.generator import capabilities, generate_records
from agentkit.envs.runtime import execute
from agentkit.envs.spec import Call


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("701440 + 551936 + 717824", 1971200),
        ("120.5 + 99.25", 119.75 + 100),
        ("round(78500 * 108 / 100)", 84780),
        ("round(45.27 * 80 / 100, 2)", 36.22),
        ("350.0 - 123.45", 226.55),
        ("-(12.5 + 3)", -15.5),
        ("0.1 + 0.2", 0.3),
        ("1,234.5 + 0.5", 1235.0),
    ],
)
def test_arithmetic_is_exact_to_the_cent(expression: str, value: float) -> None:
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize(
    "expression",
    ['__import__("os").system("id")', "open('/etc/passwd')", "2 ** 4096", "x + 1", "1 / 0", "(1).__class__",
     "round(1, 99)", "[1, 2]", "1 if 1 else 2", "", "9" * 3000, "99999999 * 99999999 * 99999999", "1e300 * 1e300"],
)
def test_anything_but_arithmetic_is_refused_with_a_reason(expression: str) -> None:
    with pytest.raises(ToolCallError) as err:
        evaluate_arithmetic(expression)
    assert str(err.value)


def test_references_compute_with_the_calculator_and_a_wrong_sum_fails() -> None:
    records = generate_records(60, 31337, ["ledger", "hr", "filesystem"], (1, 2))  # fmt: skip
    using = [r for r in records if any(c.tool.startswith("calculat") for c in r.solution.calls)]
    assert len(using) >= 5
    for rec in using:
        assert all(t.name.startswith("calculat") is False or t.impl == "kit.calculate" for t in rec.environment.tools)
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, rec.solution.calls, search=search, python=python)
        assert rec.verifier.check(trace.diff(), rec.solution.answer, trace.ws.get).passed
    # a question answered with a sum: report one more than the calculator said, and the verifier says no
    rec = next(r for r in using if r.solution.answer and any(
        c.thought.startswith(("Adding up", "One posting")) for c in r.solution.calls))
    calc = next(c for c in rec.solution.calls if c.tool.startswith("calculat"))
    result = evaluate_arithmetic(calc.arguments["expression"])
    wrong = rec.solution.answer.replace(str(result), str(result + 1))
    assert wrong != rec.solution.answer
    calls = [c if c is not calc else Call(c.tool, c.arguments) for c in rec.solution.calls]
    trace = execute(rec.environment, calls)
    assert not rec.verifier.check(trace.diff(), wrong, trace.ws.get).passed


def test_a_reference_sum_lists_each_value_under_its_record_before_the_expression() -> None:
    """The thought before a long sum names each record and its value in result order, and the expression adds
    exactly those values: a label that is not in the results, a repeated record or a value that differs from its
    record's would teach the model the very skipping and repeating that the list is there to prevent."""
    records = generate_records(400, 4242, ["ledger"], (1, 2))
    checked = 0
    for rec in records:
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, rec.solution.calls, search=search, python=python)
        for i, call in enumerate(rec.solution.calls):
            if not call.thought.startswith("Adding up") or ": " not in call.thought:
                continue
            head, listed = call.thought.split(": ", 1)
            items = [p.split(" ", 1) for p in listed.rstrip(".").split(", ")]
            # How many values, stated first, is the listing's total (a copy), and #1..#N count up to it: the model
            # repeated the last item when nothing said where the list ends.
            count = int(head.removeprefix("Adding up the ").split(" ", 1)[0])
            assert count == trace.results[i - 1].value["total"], call.thought
            assert [n for n, _ in items] == [f"#{k}" for k in range(1, count + 1)], call.thought
            pairs = [rest.rsplit(" ", 1) for _, rest in items]
            labels, values = [p[0] for p in pairs], [p[1] for p in pairs]
            assert len(set(labels)) == len(labels) >= 2, call.thought
            assert call.arguments["expression"] == " + ".join(values)  # the renderer adds the model's leading space
            seen = "".join(str(r.content) for r in trace.results[:i])
            for label, value in zip(labels, values, strict=True):
                assert f'"{label}"' in seen, (label, call.thought)
                assert value.lstrip("-") in seen or value.rstrip("0").rstrip(".") in seen, (value, call.thought)
            checked += 1
    assert checked >= 5


def test_a_log_archive_limit_in_kib_is_converted_by_the_calculator() -> None:
    """The reference multiplies with the tool and lists with the tool's result: no product is written in a thought
    (the small model cannot multiply in its head), and the listing's byte limit is the calculator's result."""
    records = generate_records(120, 9191, ["filesystem"], (1, 2))
    checked = 0
    for rec in records:
        calls = rec.solution.calls
        i = next((k for k, c in enumerate(calls) if c.tool.startswith("calculat") and "* 1024" in
                  c.arguments["expression"]), None)
        if i is None:
            continue
        kib = int(calls[i].arguments["expression"].split(" * ")[0])
        assert f"{kib} KiB ({kib} x 1024 bytes)" in calls[i].thought
        listing = calls[i + 1]
        assert kib * 1024 in listing.arguments.values(), listing.arguments
        assert f"That is {kib * 1024} bytes" in listing.thought
        assert not any(" = " in c.thought for c in calls), [c.thought for c in calls]
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, calls, search=search, python=python)
        assert trace.results[i].content and str(kib * 1024) in str(trace.results[i].content)
        assert rec.verifier.check(trace.diff(), rec.solution.answer, trace.ws.get).passed
        checked += 1
    assert checked >= 3
