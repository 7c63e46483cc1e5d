"""The calculator every environment has: exact arithmetic for sums and percentages, nothing else, and reference
solutions that use it (so trajectories show an agent copying values into an expression instead of adding in its
head)."""

from __future__ import annotations

import pytest

from envs.errors import ToolCallError
from envs.families._kit import evaluate_arithmetic
from envs.generator import capabilities, generate
from envs.runtime import execute
from envs.spec import Call, TaskRecord


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
    records = [TaskRecord.from_json(s.line) for s in generate(60, 31337, ["travel", "hr", "filesystem"], (1, 2))
               if s.line]  # fmt: skip
    using = [r for r in records if any(c.tool.startswith("calculat") for c in r.solution.calls)]
    assert len(using) >= 5
    for rec in using:
        assert all(t.name.startswith("calculat") is False or t.impl == "kit.calculate" for t in rec.environment.tools)
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, rec.solution.calls, search=search, python=python)
        assert rec.verifier.check(trace.diff(), rec.solution.answer, trace.ws.get).passed
    # a question answered with a sum: report one more than the calculator said, and the verifier says no
    rec = next(r for r in using if r.solution.answer and "total" in r.solution.answer.lower()
               or r.solution.answer and "bytes" in r.solution.answer)
    calc = next(c for c in rec.solution.calls if c.tool.startswith("calculat"))
    result = evaluate_arithmetic(calc.arguments["expression"])
    wrong = rec.solution.answer.replace(str(result), str(result + 1))
    assert wrong != rec.solution.answer
    calls = [c if c is not calc else Call(c.tool, c.arguments) for c in rec.solution.calls]
    trace = execute(rec.environment, calls)
    assert not rec.verifier.check(trace.diff(), wrong, trace.ws.get).passed
