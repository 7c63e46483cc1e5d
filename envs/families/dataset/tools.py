"""Data-analysis tools: file metadata, a capped row preview, the `python` tool, and the KPI table."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_builder import STR, P, S, find_tool, make_tool
from agentkit.envs.families._kit_standard import data_tools
from agentkit.envs.spec import ToolSpec

OPS: dict[str, Any] = {}


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    mk = rng.choice(("metric_id", "id", "kpi_id"))
    return {
        **data_tools(rng),
        "list_metrics": find_tool(
            rng, coll=cols["metrics"], id_key=mk, label="metric", difficulty=difficulty,
            names=("list_metrics", "find_kpis", "search_metrics"),
            filters=[(P("name", ("name", "query"), STR), f["name"], "contains")],
        ),
        "set_metric": make_tool(
            rng, impl="kit.update", names=("set_metric", "record_kpi", "update_metric"), writes=True,
            descriptions=("Record a metric's value.",),
            params=[P("id", (mk,) if mk != "id" else ("id", "metric"), STR),
                    P("value", ("value", "new_value"), S(type="number"))],
            config={"coll": cols["metrics"], "id_key": mk, "label": "metric", "set": {"value": f["value"]}},
        ),
    }
