"""Ledger data model: accounts (owner, kind, balance, status) and their transactions, with varied vocabulary."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import MONTHS, ids, people, size_for, vocab
from agentkit.envs.family import pick

KINDS = ("checking", "savings", "business")
STATUSES = ("active", "frozen", "closed")
CATEGORIES = ("groceries", "rent", "travel", "utilities", "dining", "software")

COLLECTIONS = {"accounts": ("accounts", "bank_accounts", "ledger_accounts"),
               "transactions": ("transactions", "ledger_entries", "postings")}
FIELDS = {
    "owner": ("owner", "holder", "customer_name"),
    "kind": ("type", "kind", "account_type"),
    "balance": ("balance", "current_balance", "available_balance"),
    "currency": ("currency", "ccy"),
    "status": ("status", "state"),
    "account": ("account_id", "account", "acct"),
    "amount": ("amount", "value"),
    "category": ("category", "tag"),
    "date": ("date", "posted_on", "booked"),
}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(state, bindings, data). Each owner holds 1-3 accounts of distinct kinds; transactions span six months."""
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    currency = pick(rng, ("USD", "EUR", "GBP"))
    owners = people(rng, 3 + difficulty + rng.randrange(3))
    accounts: dict[str, dict[str, Any]] = {}
    acc_ids = iter(ids(rng, ("ACC-", "AC", "A-"), 3 * len(owners)))
    extra_field = pick(rng, (None, "branch", "opened"))
    for owner in owners:
        for kind in rng.sample(KINDS, 1 + rng.randrange(3)):
            rec: dict[str, Any] = {
                f["owner"]: owner, f["kind"]: kind, f["balance"]: round(rng.uniform(20, 5000), 2),
                f["currency"]: currency,
                f["status"]: "active" if rng.random() < 0.85 else pick(rng, ("frozen", "closed")),
            }
            if extra_field == "branch":
                rec["branch"] = pick(rng, ("north", "central", "harbour"))
            elif extra_field == "opened":
                rec["opened"] = f"20{rng.randrange(15, 25)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}"
            accounts[next(acc_ids)] = rec
    txs: dict[str, dict[str, Any]] = {}
    tx_ids = ids(rng, ("TX-", "T", "TRX"), size_for(difficulty, rng, 10, 8), (1000, 9000))
    acct_list = list(accounts)
    for tid in tx_ids:
        txs[tid] = {
            f["account"]: pick(rng, acct_list), f["amount"]: -round(rng.uniform(5, 400), 2),
            f["category"]: pick(rng, CATEGORIES),
            f["date"]: f"{pick(rng, MONTHS[: 2 + difficulty // 2])}-{rng.randrange(10, 29)}",
        }
    state = {cols["accounts"]: accounts, cols["transactions"]: txs}
    bindings = {"collections": cols, "fields": f, "today": "2025-07-01"}
    return state, bindings, {"owners": owners, "currency": currency}
