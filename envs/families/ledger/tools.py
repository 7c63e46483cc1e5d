"""Ledger tools: account search/get, transaction listing, transfers and status changes."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.errors import ToolCallError
from agentkit.envs.families._kit_builder import STR, P, S, find_tool, get_tool, make_tool
from agentkit.envs.families._kit_records import require
from agentkit.envs.families.ledger.model import CATEGORIES, KINDS, STATUSES
from agentkit.envs.runtime import ToolContext
from agentkit.envs.spec import ToolSpec


def op_transfer(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Move money between two active accounts of the same currency; books one posting on each side."""
    accounts, f = ctx.c("accounts"), ctx.f
    src, dst = args["source"], args["target"]
    if src == dst:
        raise ToolCallError("source and target are the same account")
    amount = round(float(args["amount"]), 2)
    if amount <= 0:
        raise ToolCallError(f"amount must be positive, got {args['amount']}")
    a, b = require(ctx, accounts, src, "account"), require(ctx, accounts, dst, "account")
    for rid, rec in ((src, a), (dst, b)):
        if rec[f("status")] != "active":
            raise ToolCallError(f"account {rid} is {rec[f('status')]}; only active accounts can transfer")
    if a[f("currency")] != b[f("currency")]:
        raise ToolCallError("accounts have different currencies")
    if a[f("balance")] < amount:
        raise ToolCallError(f"insufficient funds in {src}: balance {a[f('balance')]:.2f}, requested {amount:.2f}")
    ctx.ws.update(accounts, src, {f("balance"): round(a[f("balance")] - amount, 2)})
    ctx.ws.update(accounts, dst, {f("balance"): round(b[f("balance")] + amount, 2)})
    txs, today = ctx.c("transactions"), ctx.env.bindings["today"]
    prefix = ctx.config["tx_prefix"]
    for rid, sign in ((src, -1), (dst, 1)):
        ctx.ws.insert(txs, {f("account"): rid, f("amount"): sign * amount, f("category"): "transfer",
                            f("date"): today}, prefix)
    return {"ok": True, "amount": amount, "source_balance": round(a[f("balance")] - amount, 2)}


OPS = {"transfer": op_transfer}


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    acc_key = rng.choice(("account_id", "id"))
    return {
        "find_accounts": find_tool(
            rng, coll=cols["accounts"], id_key=acc_key, label="account", difficulty=difficulty,
            names=("find_accounts", "search_accounts", "list_accounts"),
            filters=[
                (P("owner", ("owner", "holder", "name"), STR, doc="Owner name or part of it."), f["owner"], "contains"),
                (P("kind", ("type", "kind", "account_type"), S(type="string", enum=list(KINDS))), f["kind"], "eq"),
                (P("status", ("status", "state"), S(type="string", enum=list(STATUSES))), f["status"], "eq"),
            ],
            order=(f["balance"],),
            bounds=[(P("balance_below", ("balance_below", "balance_under"), S(type="number"),
                       doc="Only accounts whose balance is strictly below this amount."), f["balance"], "lt")],
        ),
        "get_account": get_tool(rng, coll=cols["accounts"], id_key=acc_key, label="account",
                                names=("get_account", "account_details", "fetch_account")),
        "list_transactions": find_tool(
            rng, coll=cols["transactions"], id_key=rng.choice(("tx_id", "id", "transaction_id")),
            label="transaction", difficulty=difficulty,
            names=("list_transactions", "search_transactions", "get_postings"),
            filters=[
                (P("account", ("account_id", "account"), STR), f["account"], "eq"),
                (P("category", ("category", "tag"), S(type="string", enum=list(CATEGORIES) + ["transfer"])),
                 f["category"], "eq"),
                (P("month", ("month", "period"), S(type="string", pattern="^[0-9]{4}-[0-9]{2}$"),
                   doc="YYYY-MM"), f["date"], "contains"),
            ],
        ),
        "transfer": make_tool(
            rng, impl="ledger.transfer", names=("transfer", "transfer_funds", "move_money"), writes=True,
            descriptions=("Transfer money between two active accounts of the same currency.",
                          "Move funds from one account to another; fails on insufficient funds."),
            params=[P("source", ("from_account", "source_id", "debit_account"), STR),
                    P("target", ("to_account", "target_id", "credit_account"), STR),
                    P("amount", ("amount", "value"), S(type="number", minimum=0.01))],
            config={"tx_prefix": rng.choice(("TX-N", "TN", "TRN"))},
        ),
        "set_status": make_tool(
            rng, impl="kit.update", names=("set_account_status", "update_account_status", "change_account_state"),
            writes=True, descriptions=("Freeze, close or re-activate an account.",),
            params=[P("id", (acc_key, "id") if acc_key != "id" else ("id", "account"), STR),
                    P("status", ("status", "new_status"), S(type="string", enum=list(STATUSES)))],
            config={"coll": cols["accounts"], "id_key": acc_key, "label": "account", "set": {"status": f["status"]}},
            nestable=("status",),
        ),
    }

