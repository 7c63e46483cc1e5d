"""Generic record operations behind the built tools (`kit.get`, `kit.find`, `kit.update`, `kit.delete`): lookups that
tell the model how to recover, filters, sorting, pagination and sums, and the counter and reservation helpers that
families' own operations share.
"""

from __future__ import annotations

from typing import Any

from agentkit.envs.errors import ToolCallError
from agentkit.envs.runtime import ToolContext


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
