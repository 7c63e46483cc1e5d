"""Data-analysis templates. Each computes its gold value twice: directly in Python from the generated rows, and by
executing the reference solution's code through the `python` tool; the two must agree or the task is dropped."""

from __future__ import annotations

from collections.abc import Callable

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.families.dataset.model import CATEGORIES, REGIONS
from agentkit.envs.family import Anchored, GoalBuilder, pick

LOAD = (
    "lines = open({file!r}).read().splitlines()\n"
    "header = lines[0].split(',')\n"
    "rows = [dict(zip(header, line.split(','))) for line in lines[1:]]\n"
)
"""How the reference reads the file (plain CSV without quoting, as the file's preview shows)."""


def _inspect(g: GoalBuilder) -> None:
    if not any(c.tool == g.w.ops["file_info"].name for c in g.calls):
        g.do("file_info", "First I check the file's columns and size.", path=g.w.data["file"])


def _compute(g: GoalBuilder, body: str, label: str, value: str, direct: Callable[[list[list]], float | str],
             thought: str) -> str:
    """Run the reference code through the python tool; its printed result must equal the direct computation.

    The code prints `label: value`, so the value follows a space in the tool result as it does in the answer. Printed
    bare, the number opened the line, a different BPE token sequence from the answer's " 5070.28", and the model glued
    it to the word before ("is5070.28") or dropped its first digits ("is 5.8" for 4095.8)."""
    data = g.w.data
    _inspect(g)
    code = LOAD.format(file=data["file"]) + body + f"print({label + ':'!r}, {value})\n"
    printed = g.do("python", thought, code=code).strip()
    if not printed.startswith(f"{label}: "):
        raise GenerationError(f"reference code printed {printed!r}, without its label {label!r}")
    out = printed.removeprefix(f"{label}: ")
    want = direct(data["rows"])
    got: float | str = out
    if isinstance(want, float | int):
        try:
            got = float(out)
        except ValueError as exc:
            raise GenerationError(f"reference code printed {out!r}") from exc
        if abs(got - want) > 0.005:
            raise GenerationError(f"reference code gives {got}, direct computation {want}")
    elif got != want:
        raise GenerationError(f"reference code gives {got!r}, direct computation {want!r}")
    return out


def _revenue(r: list) -> float:
    return r[4] * r[5]


def top_region(g: GoalBuilder) -> None:
    data = g.w.data
    month = pick(g.rng, data["months"])
    totals: dict[str, float] = {}
    for r in data["rows"]:
        if r[1].startswith(month):
            totals[r[2]] = totals.get(r[2], 0.0) + _revenue(r)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    if len(ranked) < 2 or ranked[0][1] - ranked[1][1] < 0.01:
        raise GenerationError("tie")
    body = (f"tot = {{}}\nfor r in rows:\n    if r['date'].startswith({month!r}):\n"
            "        tot[r['region']] = tot.get(r['region'], 0) + int(r['units']) * float(r['unit_price'])\n")
    named = data["month_names"][month]
    # Anchored on the question's phrase up to the month (see the ledger's spending tasks).
    best = _compute(g, body, "top region", "max(tot, key=tot.get)", lambda rows: ranked[0][0],
                    Anchored(f"The highest revenue (units x unit_price) in {named}",
                             f"{named} is {month}. Summing revenue per region for {month}."))
    g.hide(f"{ranked[0][1]:.2f}")
    g.say(f"In {data['file']}, which region had the highest revenue (units x unit_price) in "
          f"{data['month_names'][month]}?")
    g.answer_names([best], f"The {best} region had the highest revenue.", [r for r in REGIONS if r != best],
                   "The script prints the top region.")


def mean_order(g: GoalBuilder) -> None:
    data = g.w.data
    cat = pick(g.rng, CATEGORIES)
    vals = [_revenue(r) for r in data["rows"] if r[3] == cat]
    if not vals:
        raise GenerationError("empty")
    body = f"v = [int(r['units']) * float(r['unit_price']) for r in rows if r['category'] == {cat!r}]\n"
    out = _compute(g, body, "mean", "round(sum(v) / len(v), 2)", lambda rows: round(sum(vals) / len(vals), 2),
                   f"Averaging revenue of {cat} orders.")
    g.hide(out)
    g.say(f"What is the average revenue per order (units x unit_price) for the {cat} category in {data['file']}? "
          "Round to 2 decimals.")
    # The answer writes the number as the script printed it ("4095.8", not "4095.80"), so it is a copy.
    g.answer_number(float(out), f"The average {cat} order revenue is {out}.", "The script prints the mean.")


def record_units(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    M = w.c("metrics")
    name = g.pick_record(M, what="metric")[1][f("name")]
    _, region, yyyy, mm = name.split("_")
    month = f"{yyyy}-{mm}"
    expr = f"sum(int(r['units']) for r in rows if r['region'] == {region!r} and r['date'].startswith({month!r}))"
    direct = sum(r[4] for r in w.data["rows"] if r[2] == region and r[1].startswith(month))
    if direct == 0:
        raise GenerationError("zero")
    named = w.data["month_names"][month]
    value = int(_compute(g, "", "units", expr, lambda rows: direct,
                         Anchored(f"The total units sold in the {region} region during {named}",
                                  f"{named} is {month}. Counting units sold in {region} in {month}.")))
    hit = only(g.find_all("list_metrics", f"Finding the metric {name}.", name=name), "metric")
    mid = hit[id_key(w, "list_metrics")]
    g.do("set_metric", f"Recording {value} on {mid}.", id=mid, value=value)
    g.expect(M, mid, f("value"), value)
    g.hide(mid, value)
    g.say(f"Compute the total units sold in the {region} region during {w.data['month_names'][month]} from "
          f"{w.data['file']} and record it as the value of the metric '{name}'.")


def big_orders(g: GoalBuilder) -> None:
    data = g.w.data
    region = pick(g.rng, REGIONS)
    threshold = pick(g.rng, (1000, 2500, 5000))
    n = sum(1 for r in data["rows"] if r[2] == region and _revenue(r) > threshold)
    expr = f"sum(1 for r in rows if r['region'] == {region!r} and int(r['units']) * float(r['unit_price']) > {threshold})"
    out = int(_compute(g, "", "orders", expr, lambda rows: n, f"Counting {region} orders above {threshold}."))
    g.hide(out)
    g.say(f"How many orders in {data['file']} from the {region} region have a revenue (units x unit_price) above "
          f"{threshold}?")
    g.answer_number(out, f"There are {out} such orders.", tolerance=0)


ATOMS = [top_region, mean_order, record_units, big_orders]
