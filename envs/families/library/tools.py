"""Library tools: catalogue search, member look-up, checkout and return (copies are counted)."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_builder import STR, P, S, find_tool, get_tool, make_tool
from agentkit.envs.families._kit_records import close_reservation, require, take_unit
from agentkit.envs.families.library.model import GENRES
from agentkit.envs.runtime import ToolContext
from agentkit.envs.spec import ToolSpec


def op_checkout(ctx: ToolContext, args: dict[str, Any]) -> Any:
    f = ctx.f
    require(ctx, ctx.c("members"), args["member"], "member")
    take_unit(ctx, ctx.c("books"), args["book"], f("copies"), "book")
    loan = {f("member"): args["member"], f("book"): args["book"], f("status"): "active", f("due"): "2025-07-15"}
    lid = ctx.ws.insert(ctx.c("loans"), loan, ctx.config["prefix"])
    return {"ok": True, "loan_id": lid, **loan}


def op_return(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return close_reservation(ctx, ctx.c("loans"), args["id"], "loan", "returned",
                             unit_coll=ctx.c("books"), unit_ref=ctx.f("book"), unit_field=ctx.f("copies"))


OPS = {"checkout": op_checkout, "return": op_return}


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    bk, mk, lk = rng.choice(("book_id", "id")), rng.choice(("member_id", "id")), rng.choice(("loan_id", "id"))
    return {
        "search_catalog": find_tool(
            rng, coll=cols["books"], id_key=bk, label="book", difficulty=difficulty,
            names=("search_catalog", "find_books", "catalogue_search"),
            filters=[(P("title", ("title", "query"), STR), f["title"], "contains"),
                     (P("author", ("author", "writer"), STR), f["author"], "contains"),
                     (P("genre", ("genre", "subject"), S(type="string", enum=list(GENRES))), f["genre"], "eq")],
            order=(f["year"], f["title"]),
            bounds=[(P("min_copies", ("min_copies", "copies_at_least"), S(type="integer", minimum=1),
                       doc="Only books with at least this many copies available."), f["copies"], "min")],
        ),
        "get_book": get_tool(rng, coll=cols["books"], id_key=bk, label="book", names=("get_book", "book_details")),
        "find_members": find_tool(
            rng, coll=cols["members"], id_key=mk, label="member", difficulty=difficulty,
            names=("find_members", "search_patrons", "member_lookup"),
            filters=[(P("name", ("name", "query"), STR), f["mname"], "contains")],
        ),
        "list_loans": find_tool(
            rng, coll=cols["loans"], id_key=lk, label="loan", difficulty=difficulty,
            names=("list_loans", "search_loans", "member_checkouts"),
            filters=[(P("member", ("member_id", "patron_id"), STR), f["member"], "eq"),
                     (P("status", ("status",), S(type="string", enum=["active", "returned"])), f["status"], "eq")],
        ),
        "checkout": make_tool(
            rng, impl="library.checkout", names=("checkout", "lend_book", "borrow"), writes=True,
            descriptions=("Lend one available copy of a book to a member.",),
            params=[P("member", ("member_id", "patron_id"), STR), P("book", ("book_id", "item_id"), STR)],
            config={"prefix": rng.choice(("L-N", "NEWLN", "CO-N"))},
        ),
        "return": make_tool(
            rng, impl="library.return", names=("return_loan", "check_in", "return_book"), writes=True,
            descriptions=("Mark a loan returned; the copy becomes available again.",),
            params=[P("id", (lk,) if lk != "id" else ("id", "loan"), STR)],
        ),
    }
