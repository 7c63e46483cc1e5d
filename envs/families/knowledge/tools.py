"""Knowledge-base tools: the shared `search_docs`/`read_doc` pair plus case look-up and updates."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_builder import STR, P, S, find_tool, get_tool, make_tool
from agentkit.envs.families._kit_standard import search_tools
from agentkit.envs.families.knowledge.model import TIERS
from agentkit.envs.spec import ToolSpec

OPS: dict[str, Any] = {}


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    ck = rng.choice(("case_id", "id"))
    return {
        **search_tools(rng),
        "list_cases": find_tool(
            rng, coll=cols["cases"], id_key=ck, label="case", difficulty=difficulty,
            names=("list_cases", "search_cases", "find_requests"),
            filters=[(P("customer", ("customer", "requester"), STR), f["customer"], "contains"),
                     (P("product", ("product", "item"), STR), f["product"], "contains")],
        ),
        "get_case": get_tool(rng, coll=cols["cases"], id_key=ck, label="case", names=("get_case", "case_details")),
        "update_case": make_tool(
            rng, impl="kit.update", names=("update_case", "edit_case", "set_case_fields"), writes=True,
            descriptions=("Fill in policy facts on a case.",),
            params=[P("id", (ck,) if ck != "id" else ("id", "case"), STR),
                    P("refund_limit", ("refund_limit", "max_refund"), S(type="number", minimum=0), False),
                    P("warranty", ("warranty_months", "coverage_months"), S(type="integer", minimum=0), False),
                    P("tier", ("support_tier", "tier"), S(type="string", enum=list(TIERS)), False)],
            config={"coll": cols["cases"], "id_key": ck, "label": "case",
                    "set": {"refund_limit": f["refund_limit"], "warranty": f["warranty"], "tier": f["tier"]}},
            nestable=("refund_limit", "warranty", "tier"),
        ),
    }
