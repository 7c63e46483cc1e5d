"""Shared building blocks for families: a tool builder that varies names and signatures, generic record
operations (get / find with filters and pagination / update / create / delete), corpus and data-file operations,
and read-only distractor tools. Families use these for the plumbing and write only their domain logic.
"""

from __future__ import annotations

import ast
import csv
import io
import operator
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envs.errors import GenerationError, ToolCallError
from envs.family import World, pick
from envs.runtime import ToolContext
from envs.spec import Environment, ToolSpec

# --------------------------------------------------------------------------------------------------------------------
# Tool builder


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


# --------------------------------------------------------------------------------------------------------------------
# Generic operations


def with_id(id_key: str, rid: str, rec: dict[str, Any]) -> dict[str, Any]:
    return {id_key: rid, **rec}


def require(ctx: ToolContext, coll: str, rid: Any, label: str) -> dict[str, Any]:
    """The record, or an error that tells the model how to recover (like a 404 body)."""
    rec = ctx.ws.get(coll, str(rid))
    if rec is None:
        raise ToolCallError(f"no {label} with id {rid!r}; search first to get a valid id")
    return rec


def op_get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    cfg = ctx.config
    rec = require(ctx, cfg["coll"], args["id"], cfg["label"])
    return with_id(cfg["id_key"], args["id"], rec)


def _predicate(fld: str, mode: str, want: Any) -> Any:
    """A compiled filter: record -> bool (case-insensitive for text, membership for list fields)."""
    if mode == "eq":
        if isinstance(want, str):
            w = want.casefold()
            return lambda rec: isinstance(rec.get(fld), str) and rec[fld].casefold() == w
        return lambda rec: rec.get(fld) == want
    if mode == "contains":
        w = str(want).casefold()

        def contains(rec: dict[str, Any]) -> bool:
            got = rec.get(fld)
            if isinstance(got, list):
                return any(w == str(g).casefold() for g in got)
            return w in str(got).casefold()

        return contains
    if mode == "min":
        return lambda rec: isinstance(rec.get(fld), int | float) and rec[fld] >= want
    if mode == "max":
        return lambda rec: isinstance(rec.get(fld), int | float) and rec[fld] <= want
    if mode == "lt":
        return lambda rec: isinstance(rec.get(fld), int | float) and rec[fld] < want
    if mode == "gt":
        return lambda rec: isinstance(rec.get(fld), int | float) and rec[fld] > want
    if mode == "suffix":
        w = str(want).casefold()
        return lambda rec: isinstance(rec.get(fld), str) and rec[fld].casefold().endswith(w)
    raise ValueError(f"unknown filter mode {mode}")


def filter_tests(cfg: dict[str, Any], args: dict[str, Any]) -> list[Any]:
    """The compiled filters of a tool's config (canonical argument -> [field, mode]) that this call passed."""
    filters: dict[str, list[str]] = cfg.get("filters", {})
    return [_predicate(fld, mode, args[name]) for name, (fld, mode) in filters.items() if name in args]


def op_find(ctx: ToolContext, args: dict[str, Any]) -> Any:
    cfg = ctx.config
    tests = filter_tests(cfg, args)
    id_key = cfg["id_key"]
    hits = [{id_key: rid, **rec} for rid, rec in ctx.ws.records(cfg["coll"]) if all(t(rec) for t in tests)]
    order_by: str = args.get("order_by") or ""
    fld = order_by.removeprefix("-") or cfg.get("sort")
    if order_by and fld not in cfg.get("order", ()):
        raise ToolCallError(f"cannot sort by {order_by!r}; sortable: {', '.join(cfg.get('order', ()))}")
    if fld:
        hits.sort(key=lambda r: (r.get(fld), r[id_key]))
    if order_by.startswith("-"):
        hits.sort(key=lambda r: r.get(fld), reverse=True)  # stable: ties keep ascending ids
    return paginate(cfg, hits, args)


def paginate(cfg: dict[str, Any], hits: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    """One page of `hits` in the tool's paging style (page | offset | cursor | None = everything). Every style
    carries the `total` of matches, as most real list APIs do: a sum's reference states how many values it adds
    by copying it (`GoalBuilder.add_up`), and a count reads it rather than paging through. With `sum_of`, the page
    also carries the `sum` of that field over every match."""
    page = _page(cfg, hits, args)
    if args.get("sum_of") is not None:
        field = args["sum_of"]
        if field not in cfg.get("sums", ()):
            raise ToolCallError(f"cannot add up {field!r}; summable: {', '.join(cfg.get('sums', ())) or 'none'}")
        page["sum"] = round(sum(h.get(field) or 0 for h in hits), 2)
    return page


def _page(cfg: dict[str, Any], hits: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    size, style, key = cfg["page_size"], cfg["paging"], cfg["items_key"]
    if style == "page":
        pages = max(1, -(-len(hits) // size))
        page = args.get("page", 1)
        if page > pages:
            raise ToolCallError(f"page {page} is past the last page ({pages})")
        return {key: hits[(page - 1) * size: page * size], "page": page, "pages": pages, "total": len(hits)}
    if style == "offset":
        off, lim = args.get("offset", 0), args.get("limit", size)
        nxt = off + lim if off + lim < len(hits) else None
        return {key: hits[off: off + lim], "total": len(hits), "next_offset": nxt}
    if style == "cursor":
        start = decode_cursor(args["cursor"]) if "cursor" in args else 0
        nxt = encode_cursor(start + size) if start + size < len(hits) else None
        return {key: hits[start: start + size], "total": len(hits), "next_cursor": nxt}
    return {key: hits, "total": len(hits)}


def paging_config(rng: random.Random, difficulty: int, label: str) -> dict[str, Any]:
    return {"paging": pick(rng, PAGING_STYLES), "page_size": pick(rng, (10, 8) if difficulty <= 2 else (5, 4, 3)),
            "items_key": pick(rng, ("items", "results", "entries", label + "s"))}


def encode_cursor(offset: int) -> str:
    return f"c{offset * 7 + 3:x}"


def decode_cursor(token: str) -> int:
    try:
        n = int(token[1:], 16)
    except ValueError:
        n = -1
    if not token.startswith("c") or n < 3 or (n - 3) % 7:
        raise ToolCallError(f"invalid cursor {token!r}: pass the next_cursor value of the previous page unchanged")
    return (n - 3) // 7


def op_update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Set fields of one record. config: coll, id_key, label, set {canonical arg: actual field}."""
    cfg = ctx.config
    require(ctx, cfg["coll"], args["id"], cfg["label"])
    changes = {fld: args[name] for name, fld in cfg["set"].items() if name in args}
    if not changes:
        raise ToolCallError("nothing to change: pass at least one field to set")
    rec = ctx.ws.update(cfg["coll"], args["id"], changes)
    return {"ok": True, cfg["label"]: with_id(cfg["id_key"], args["id"], rec)}


def op_delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    cfg = ctx.config
    require(ctx, cfg["coll"], args["id"], cfg["label"])
    ctx.ws.delete(cfg["coll"], args["id"])
    return {"ok": True, "deleted": args["id"]}


# -- corpus ----------------------------------------------------------------------------------------------------------


def op_search_docs(ctx: ToolContext, args: dict[str, Any]) -> Any:
    if ctx.search is None:
        raise ToolCallError("search is not available in this episode")
    k = min(int(args.get("k", 5)), 10)
    by_id = {d["id"]: d for d in ctx.env.corpus}
    hits = ctx.search.search(args["query"], k)
    return [{"doc_id": did, "title": by_id[did]["title"], "snippet": by_id[did]["text"][:90]} for did, _ in hits]


def op_read_doc(ctx: ToolContext, args: dict[str, Any]) -> Any:
    for d in ctx.env.corpus:
        if d["id"] == args["doc_id"]:
            return {"doc_id": d["id"], "title": d["title"], "text": d["text"]}
    raise ToolCallError(f"no document {args['doc_id']!r}; use the search tool to find document ids")


def search_tools(rng: random.Random) -> dict[str, ToolSpec]:
    return {
        "search_docs": make_tool(
            rng, impl="kit.search_docs", names=("search_docs", "search_kb", "kb_search", "search"),
            descriptions=("Full-text search over the knowledge base; returns document ids, titles and snippets.",),
            params=[P("query", ("query", "q", "text"), STR, doc="Keywords."),
                    P("k", ("k", "top_k", "max_results"), S(type="integer", minimum=1, maximum=10), False)],
        ),
        "read_doc": make_tool(
            rng, impl="kit.read_doc", names=("read_doc", "get_document", "open_doc", "fetch_article"),
            descriptions=("Read the full text of one document.",),
            params=[P("doc_id", ("doc_id", "id", "document_id"), STR)],
        ),
    }


# -- data files ------------------------------------------------------------------------------------------------------


def _file(ctx: ToolContext, name: str) -> str:
    if name not in ctx.env.files:
        raise ToolCallError(f"no file {name!r}; files: {sorted(ctx.env.files)}")
    return ctx.env.files[name]


def op_file_info(ctx: ToolContext, args: dict[str, Any]) -> Any:
    text = _file(ctx, args["path"])
    header = text.split("\n", 1)[0]
    rows = text.count("\n") - 1
    return {"path": args["path"], "columns": header.split(","), "rows": rows, "bytes": len(text.encode())}


def op_read_rows(ctx: ToolContext, args: dict[str, Any]) -> Any:
    text = _file(ctx, args["path"])
    rows = list(csv.reader(io.StringIO(text)))
    off, lim = args.get("offset", 0), args.get("limit", 10)
    return {"columns": rows[0], "rows": rows[1 + off: 1 + off + lim], "offset": off, "total_rows": len(rows) - 1}


def data_tools(rng: random.Random) -> dict[str, ToolSpec]:
    return {
        "file_info": make_tool(
            rng, impl="kit.file_info", names=("file_info", "describe_file", "stat_file"),
            descriptions=("Columns, row count and size of a data file.",),
            params=[P("path", ("path", "file", "filename"), STR)],
        ),
        "read_rows": make_tool(
            rng, impl="kit.read_rows", names=("read_rows", "head_file", "preview_rows"),
            descriptions=("Read at most 20 rows of a CSV file, for a preview; use python for whole-file analysis.",),
            params=[P("path", ("path", "file", "filename"), STR),
                    P("offset", ("offset", "skip"), S(type="integer", minimum=0), False),
                    P("limit", ("limit", "n"), S(type="integer", minimum=1, maximum=20), False)],
        ),
        "python": make_tool(
            rng, impl="kit.python", names=("python", "run_python", "execute_python"),
            descriptions=("Run Python 3 code in a sandbox whose working directory holds the data files; "
                          "print what you need to see. Variables persist between calls.",),
            params=[P("code", ("code",), STR, doc="Python source to run.")],
        ),
    }


# -- distractors -----------------------------------------------------------------------------------------------------


def op_today(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"date": ctx.env.bindings.get("today", "2025-06-02"), "timezone": "UTC"}


def op_status(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"status": "ok", "component": args.get("component", "all")}


def op_noop_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"entries": [], "note": "no entries for this account in the retention window"}


def distractor_tools(rng: random.Random, difficulty: int) -> list[ToolSpec]:
    """Read-only tools no task needs; their number grows with difficulty."""
    pool = [
        make_tool(rng, impl="kit.today", names=("get_current_date", "today", "current_date"),
                  descriptions=("Today's date.",), params=[]),
        make_tool(rng, impl="kit.status", names=("system_status", "health_check", "service_status"),
                  descriptions=("Health of the backend services.",),
                  params=[P("component", ("component", "service"), S(type="string", enum=["api", "db", "all"]),
                            False)]),
        make_tool(rng, impl="kit.noop_list", names=("audit_log", "list_audit_events", "activity_log"),
                  descriptions=("Recent audit events (read-only).",),
                  params=[P("limit", ("limit", "n"), S(type="integer", minimum=1, maximum=50), False)]),
    ]
    rng.shuffle(pool)
    return pool[: min(len(pool), max(0, difficulty - 2 + rng.randrange(2)))]


# -- arithmetic ------------------------------------------------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_EXPRESSION = 2000
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 1,234.5 -> 1234.5; the comma of round(x, 2) stays


def evaluate_arithmetic(expression: str) -> int | float:
    """The value of an expression of numbers, + - * /, unary minus, parentheses and round(x) / round(x, digits);
    nothing else is accepted (no names, other calls or powers), so an expression can neither run code nor make a
    huge number."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolCallError(f"the expression is {len(expression)} characters; at most {MAX_EXPRESSION}")
    try:
        tree = ast.parse(_THOUSANDS.sub("", expression).strip(), mode="eval")
    except SyntaxError:
        raise ToolCallError(f"not an arithmetic expression: {expression!r}; write e.g. 120.5 + 99.25 * 2") from None

    def value(node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round"
                and 1 <= len(node.args) <= 2 and not node.keywords):
            digits = value(node.args[1]) if len(node.args) == 2 else 0
            if not isinstance(digits, int) or not 0 <= digits <= 10:
                raise ToolCallError("round(x, digits) takes 0 to 10 digits")
            rounded = round(value(node.args[0]), digits)
            return int(rounded) if digits == 0 else rounded
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ToolCallError("division by zero")
            return _BINARY[type(node.op)](left, right)
        raise ToolCallError(f"only numbers, + - * /, parentheses and round() are allowed, got {ast.unparse(node)!r}")

    result = value(tree.body)
    if not abs(result) <= 10**15:  # also nan and inf
        raise ToolCallError("the result is too large (over 10^15)")
    if isinstance(result, float):
        result = round(result, 6)
        if result.is_integer() and "." not in expression and "/" not in expression:
            result = int(result)
    return result


def op_calculate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"result": evaluate_arithmetic(str(args["expression"]))}


def calculator_tool(rng: random.Random) -> ToolSpec:
    """In every environment: sums and percentages are the agent's to compute, and a calculator is how an agent
    (the small local model above all) gets them exactly right instead of doing digits in its head."""
    return make_tool(
        rng, impl="kit.calculate", names=("calculate", "calculator"),
        descriptions=("Evaluate an arithmetic expression (numbers, + - * /, parentheses, round(x, digits)).",),
        params=[P("expression", ("expression",), STR, doc="For example: 120.5 + 99.25")],
    )


OPS = {
    "calculate": op_calculate,
    "get": op_get, "find": op_find, "update": op_update, "delete": op_delete,
    "search_docs": op_search_docs, "read_doc": op_read_doc, "file_info": op_file_info, "read_rows": op_read_rows,
    "today": op_today, "status": op_status, "noop_list": op_noop_list,
}


# --------------------------------------------------------------------------------------------------------------------
# Assembling a world


HANDBOOK_MIN_DIFFICULTY = 4
HANDBOOK_TOPICS = (
    ("late payment fee", "12.50 EUR"), ("overtime multiplier", "1.5"), ("maximum meeting length", "90 minutes"),
    ("log retention period", "30 days"), ("travel per diem", "65.00 EUR"), ("return window", "30 days"),
    ("expense approval limit", "500.00 EUR"), ("password rotation period", "90 days"),
)


def handbook(rng: random.Random) -> list[dict[str, str]]:
    """A few distractor policy documents; templates add the ones a task needs (`GoalBuilder.param`)."""
    return [policy_doc(f"POL-{100 + i}", topic, value)
            for i, (topic, value) in enumerate(rng.sample(HANDBOOK_TOPICS, 3 + rng.randrange(2)))]


def policy_doc(doc_id: str, topic: str, value: str) -> dict[str, str]:
    return {"id": doc_id, "title": f"{topic.capitalize()} policy",
            "text": f"Effective 1 January 2025, the {topic} is {value}. Exceptions need written approval."}


def make_world(
    family: str,
    rng: random.Random,
    difficulty: int,
    *,
    state: dict[str, dict[str, dict[str, Any]]],
    bindings: dict[str, Any],
    ops: dict[str, ToolSpec],
    data: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    corpus: list[dict[str, str]] | None = None,
) -> World:
    """Environment = the family's tools (shuffled) + distractor tools; tool names must be unique.

    From difficulty 4, half of the environments without a corpus of their own get a policy handbook (a small
    corpus plus the search tools): templates then move some of their numbers into it (`GoalBuilder.param`), so the
    agent has to search before it can act."""
    data = dict(data or {})
    corpus = list(corpus or [])
    if difficulty >= HANDBOOK_MIN_DIFFICULTY and not corpus and not files and rng.random() < 0.5:
        ops = {**ops, **search_tools(rng)}
        corpus = handbook(rng)
        data["handbook"] = True
    ops = {**ops, "calculate": calculator_tool(rng)}
    tools = list(ops.values()) + distractor_tools(rng, difficulty)
    rng.shuffle(tools)
    seen: set[str] = set()
    for t in tools:
        if t.name in seen:
            raise GenerationError(f"{family}: two tools named {t.name!r}; give their name lists distinct variants")
        seen.add(t.name)
    env = Environment(family, tools, state, bindings, files or {}, corpus)
    return World(env, ops, rng, difficulty, data)


def vocab(rng: random.Random, options: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Pick one actual name per canonical name (field or collection)."""
    return {canon: pick(rng, names) for canon, names in options.items()}


def size_for(difficulty: int, rng: random.Random, base: int = 6, per: int = 5) -> int:
    """Number of records: grows with difficulty (distractor records)."""
    return base + per * difficulty + rng.randrange(per)


# --------------------------------------------------------------------------------------------------------------------
# Shared vocabulary

FIRST_NAMES = (
    "Maria", "James", "Aiko", "Omar", "Lena", "Ravi", "Sofia", "Chen", "Fatima", "Lucas", "Ingrid", "Kwame", "Elena",
    "Diego", "Priya", "Tomas", "Hana", "Noah", "Amara", "Felix", "Yuki", "Zara", "Mateo", "Nadia", "Oskar", "Leila",
    "Jonas", "Ines", "Arjun", "Mila",
)
LAST_NAMES = (
    "Lopez", "Okafor", "Tanaka", "Haddad", "Fischer", "Patel", "Rossi", "Wang", "Nowak", "Silva", "Berg", "Mensah",
    "Petrova", "Alvarez", "Sharma", "Novak", "Kim", "Dubois", "Eze", "Larsen", "Sato", "Khan", "Moreau", "Ivanova",
    "Lindqvist", "Costa", "Weber", "Adeyemi", "Kowalski", "Murphy",
)
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")
MONTH_NAMES = {
    "2025-01": "January 2025", "2025-02": "February 2025", "2025-03": "March 2025", "2025-04": "April 2025",
    "2025-05": "May 2025", "2025-06": "June 2025",
}


def people(rng: random.Random, n: int) -> list[str]:
    """n distinct full names; some share a first or last name (near-miss distractors)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        name = f"{pick(rng, FIRST_NAMES)} {pick(rng, LAST_NAMES)}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def ids(rng: random.Random, prefixes: tuple[str, ...], n: int, start_range: tuple[int, int] = (100, 900)) -> list[str]:
    """n ids with a random prefix style and start: 'ACC-104', 'AC105', ..."""
    prefix = pick(rng, prefixes)
    start = rng.randrange(*start_range)
    return [f"{prefix}{start + i}" for i in range(n)]


# --------------------------------------------------------------------------------------------------------------------
# Template helpers


def id_key(world: World, op: str) -> str:
    return str(world.ops[op].config["id_key"])


def only(items: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The single match a template expects; more or fewer means the world is ambiguous: try another."""
    if len(items) != 1:
        raise GenerationError(f"expected exactly one {what}, found {len(items)}")
    return items[0]


def family_builder(name: str, build_state: Any, build_tools: Any) -> Any:
    """The usual `Family.build`: state from the data model, tools from the tool builder, assembled by `make_world`.
    A family's `data` may carry "files" ({name: text}) and "corpus" (documents) for the environment."""

    def build(rng: random.Random, difficulty: int) -> World:
        state, bindings, data = build_state(rng, difficulty)
        ops = build_tools(rng, difficulty, bindings)
        return make_world(name, rng, difficulty, state=state, bindings=bindings, ops=ops, data=data,
                          files=data.get("files"), corpus=data.get("corpus"))

    return build


def take_unit(ctx: ToolContext, coll: str, rid: str, fld: str, label: str) -> dict[str, Any]:
    """Decrement a counter field (seats, copies) of an existing record, refusing when none is left."""
    rec = require(ctx, coll, rid, label)
    if rec[fld] < 1:
        raise ToolCallError(f"no {label} capacity left on {rid}: {fld} is 0")
    return ctx.ws.update(coll, rid, {fld: rec[fld] - 1})


def return_unit(ctx: ToolContext, coll: str, rid: str, fld: str) -> None:
    """Increment a counter field again (a cancelled booking, a returned book), if the record still exists."""
    rec = ctx.ws.get(coll, rid)
    if rec is not None:
        ctx.ws.update(coll, rid, {fld: rec[fld] + 1})


def close_reservation(ctx: ToolContext, coll: str, rid: str, label: str, closed: str, *, unit_coll: str,
                      unit_ref: str, unit_field: str, active: str = "active") -> dict[str, Any]:
    """End an active booking/loan: set its status to `closed` and give the reserved unit back."""
    status = ctx.f("status")
    rec = require(ctx, coll, rid, label)
    if rec[status] != active:
        raise ToolCallError(f"{label} {rid} is already {rec[status]}")
    ctx.ws.update(coll, rid, {status: closed})
    return_unit(ctx, unit_coll, rec[unit_ref], unit_field)
    return {"ok": True, f"{label}_id": rid, "status": closed}
