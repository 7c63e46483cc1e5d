"""The tool builder of the families: a tool's name, description and argument names drawn from variants, and the
standard search/list (`find_tool`) and lookup (`get_tool`) tools over a collection of records.

Every draw comes from the world's generator in a fixed order, so a seed always builds the same tools.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.envs.family import pick
from agentkit.envs.spec import ToolSpec


@dataclass(frozen=True)
class P:
    """A parameter: canonical name (what implementations read), name variants, JSON Schema, required, doc."""

    canonical: str
    names: tuple[str, ...]
    schema: dict[str, Any]
    required: bool = True
    doc: str = ""


def S(**kw: Any) -> dict[str, Any]:  # noqa: N802 - reads like a type in parameter lists
    return dict(kw)


STR = {"type": "string", "minLength": 1}


def make_tool(
    rng: random.Random,
    *,
    impl: str,
    names: tuple[str, ...],
    descriptions: tuple[str, ...],
    params: list[P],
    writes: bool = False,
    config: dict[str, Any] | None = None,
    nestable: tuple[str, ...] = (),
    nest_names: tuple[str, ...] = ("changes", "updates", "fields", "patch"),
) -> ToolSpec:
    """Build a tool, choosing its name, description and argument names from the variants.

    Parameters listed in `nestable` are, half of the time, grouped under one nested object argument
    (`{"changes": {...}}`): the runtime flattens it back, so implementations never see the difference.
    """
    nest_key = pick(rng, nest_names) if nestable and rng.random() < 0.5 else None
    props: dict[str, Any] = {}
    required: list[str] = []
    nested_props: dict[str, Any] = {}
    nested_required: list[str] = []
    names_map: dict[str, str] = {}
    nest_map: dict[str, str] = {}
    for p in params:
        actual = pick(rng, p.names)
        names_map[actual] = p.canonical
        sub = {**p.schema, "description": p.doc} if p.doc else dict(p.schema)
        if nest_key and p.canonical in nestable:
            nested_props[actual] = sub
            nest_map[p.canonical] = nest_key
            if p.required:
                nested_required.append(actual)
        else:
            props[actual] = sub
            if p.required:
                required.append(actual)
    cfg = dict(config or {})
    if nest_key and nested_props:
        props[nest_key] = {
            "type": "object", "properties": nested_props, "additionalProperties": False,
            "description": "The fields to set.",
        }
        if nested_required:
            props[nest_key]["required"] = nested_required
        required.append(nest_key)
        cfg["flatten"] = [nest_key]
        cfg["nest"] = nest_map
    cfg["params"] = names_map
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return ToolSpec(pick(rng, names), pick(rng, descriptions), schema, impl, cfg, writes)


PAGING_STYLES = ("page", "offset", "cursor", None)


def paging_params(style: str | None, page_size: int) -> list[P]:
    if style == "page":
        return [P("page", ("page", "page_number"), S(type="integer", minimum=1), False, "1-based page number.")]
    if style == "offset":
        return [
            P("offset", ("offset", "skip", "start"), S(type="integer", minimum=0), False, "Items to skip."),
            P("limit", ("limit", "max_results", "count"), S(type="integer", minimum=1, maximum=page_size), False,
              f"Page size, at most {page_size}."),
        ]
    if style == "cursor":
        return [P("cursor", ("cursor", "page_token", "after"), STR, False, "Token from the previous page.")]
    return []


def find_tool(
    rng: random.Random,
    *,
    coll: str,
    id_key: str,
    label: str,
    names: tuple[str, ...],
    filters: list[tuple[P, str, str]],
    difficulty: int,
    sort: str | None = None,
    order: Sequence[str] = (),
    bounds: Sequence[tuple[P, str, str]] = (),
    sums: Sequence[str] = (),
) -> ToolSpec:
    """A search/list tool over `coll`: filters (param, actual field, mode in eq|contains|min|max|lt|gt|suffix), a
    random paging style and page size (smaller pages at higher difficulty, so more calls), a random result key.

    `order` (actual field names) adds an optional `order_by` argument and `bounds` more filters (thresholds such as
    a minimum of seats or a balance below a limit): with them the tool does the choosing that an agent would
    otherwise do by reading a whole listing (the cheapest, the oldest, every item under a limit), which is what a
    real API offers and what a small model gets wrong. Their argument names come from a generator seeded by the
    tool's own draws, so adding them leaves `rng`, and with it every environment and task of a seed, unchanged.
    `sums` (actual numeric field names) adds an optional `sum_of` argument: see `add_choosing_params`."""
    paging = paging_config(rng, difficulty, label)
    style, page_size = paging["paging"], paging["page_size"]
    desc = pick(rng, (
        f"Search {label}s. All filters are optional and combine with AND.",
        f"List {label}s matching the given filters.",
        f"Find {label} records; returns {'one page' if style else 'all matches'}.",
    ))
    cfg = {
        "coll": coll, "id_key": id_key, "label": label, **paging,
        "filters": {p.canonical: [fld, mode] for p, fld, mode in filters}, "sort": sort,
    }
    params = [P(p.canonical, p.names, p.schema, False, p.doc) for p, _, _ in filters]
    spec = make_tool(rng, impl="kit.find", names=names, descriptions=(desc,),
                     params=params + paging_params(style, page_size), config=cfg)
    if order or bounds or sums:
        add_choosing_params(spec, order, bounds, sums)
    return spec


SUM_OF = P("sum_of", ("sum_of", "total_of", "add_up"), {"type": "string"}, False,
           "Also return `sum`: this field added up over every match (all pages, not only this one).")
ORDER_BY = P("order_by", ("order_by", "sort_by", "sort"), {"type": "string"}, False,
             "Sort the results by this field, ascending; a leading '-' sorts descending.")


def add_choosing_params(
    spec: ToolSpec, order: Sequence[str] = (), bounds: Sequence[tuple[P, str, str]] = (), sums: Sequence[str] = (),
) -> None:
    """Append the `order_by`, bound and `sum_of` arguments to a built paginated tool, names drawn from its own seed.

    `sum_of` makes the listing add up a field over every match, as a reporting API or `du` does. The small model
    summing a listing itself, through the calculator, failed most sums of more than two values: it repeated the
    last item or stopped short of the list, whether the items were labelled or numbered up to a stated count
    (27 of 63 such sums on 1,000 held-out tasks of seed 7,770,035). Copying one number from a result it does well.

    Any tool with a paging config takes them (a `find_tool`, or a family's own listing such as a directory's); a
    tool without a collection seeds with an empty one, so the names of `find_tool`s stay what they were."""
    cfg = spec.config
    own = random.Random(f"{spec.name}|{cfg.get('coll', '')}|{cfg['items_key']}|{cfg['paging']}|{cfg['page_size']}")
    props: dict[str, Any] = spec.parameters["properties"]
    extra: list[tuple[P, dict[str, Any]]] = [(p, dict(p.schema)) for p, fld, mode in bounds]
    for p, fld, mode in bounds:
        cfg.setdefault("filters", {})[p.canonical] = [fld, mode]
    if order:
        cfg["order"] = list(order)
        extra.append((ORDER_BY, {"type": "string", "enum": [v for f in order for v in (f, "-" + f)]}))
    if sums:
        cfg["sums"] = list(sums)
        extra.append((SUM_OF, {"type": "string", "enum": list(sums)}))
    for p, schema in extra:
        actual = pick(own, [n for n in p.names if n not in props] or [p.canonical + "_"])
        props[actual] = {**schema, "description": p.doc} if p.doc else schema
        cfg["params"][actual] = p.canonical


def get_tool(rng: random.Random, *, coll: str, id_key: str, label: str, names: tuple[str, ...]) -> ToolSpec:
    return make_tool(
        rng, impl="kit.get", names=names,
        descriptions=(f"Get one {label} by id.", f"Fetch the full {label} record.", f"Look up a {label} by its id."),
        params=[P("id", (id_key, "id", f"{label}_id") if id_key != "id" else ("id", f"{label}_id"), STR)],
        config={"coll": coll, "id_key": id_key, "label": label},
    )


def paging_config(rng: random.Random, difficulty: int, label: str) -> dict[str, Any]:
    return {"paging": pick(rng, PAGING_STYLES), "page_size": pick(rng, (10, 8) if difficulty <= 2 else (5, 4, 3)),
            "items_key": pick(rng, ("items", "results", "entries", label + "s"))}
