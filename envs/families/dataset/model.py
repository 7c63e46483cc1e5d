"""Data-analysis data model: a sales CSV too large to page through (hundreds of rows, 20 per read) and a table
of KPI metrics to fill in. Answers need code: the agent is expected to use the `python` tool."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import MONTH_NAMES, MONTHS, ids, vocab
from agentkit.envs.family import pick

REGIONS = ("north", "south", "east", "west", "central")
CATEGORIES = ("hardware", "software", "services", "training")
FILE_NAMES = ("sales.csv", "orders_2025.csv", "transactions.csv")

COLLECTIONS = {"metrics": ("metrics", "kpis", "dashboard")}
FIELDS = {"name": ("name", "metric"), "value": ("value", "current_value"), "unit": ("unit", "units")}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    fname = pick(rng, FILE_NAMES)
    columns = ["order_id", "date", "region", "category", "units", "unit_price"]
    months = MONTHS[: 3 + difficulty // 2]
    n = 100 + 60 * difficulty + rng.randrange(30)  # 160-430 rows: 8-22 previews of 20 rows
    # Column-wise draws (random.choices with k) keep generation cheap: this family builds the largest state.
    dates = [f"{m}-{d:02d}" for m, d in zip(rng.choices(months, k=n), rng.choices(range(1, 29), k=n), strict=True)]
    regions, cats = rng.choices(REGIONS, k=n), rng.choices(CATEGORIES, k=n)
    units = rng.choices(range(1, 40), k=n)
    prices = [round(5 + 495 * rng.random(), 2) for _ in range(n)]
    rows = [[f"O{10000 + i}", dates[i], regions[i], cats[i], units[i], prices[i]] for i in range(n)]
    text = ",".join(columns) + "\n" + "".join(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n" for r in rows)
    metrics: dict[str, Any] = {}
    names = [f"units_{r}_{m.replace('-', '_')}" for r in REGIONS for m in months]
    for mid, name in zip(ids(rng, ("K-", "MET", "KPI-"), 4 + difficulty, (100, 900)),
                         rng.sample(names, 4 + difficulty), strict=True):
        metrics[mid] = {f["name"]: name, f["value"]: None, f["unit"]: "units"}
    return ({cols["metrics"]: metrics}, {"collections": cols, "fields": f, "today": "2025-07-01"},
            {"file": fname, "rows": rows, "months": months, "text": text, "month_names": MONTH_NAMES,
             "files": {fname: text}})
