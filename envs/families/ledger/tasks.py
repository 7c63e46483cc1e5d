"""Ledger task templates. Each reads what it needs through the tools, then acts and/or asks for a report."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import MONTH_NAMES, id_key, only
from agentkit.envs.family import Anchored, GoalBuilder, money, pick


def _find(g: GoalBuilder, owner: str, kind: str, thought: str) -> tuple[str, dict]:
    hit = only(g.find_all("find_accounts", thought, owner=owner, kind=kind), "account")
    return hit[id_key(g.w, "find_accounts")], hit


def _account(g: GoalBuilder, pred=None) -> tuple[str, dict]:
    w = g.w
    A, f = w.c("accounts"), w.f
    owners_kinds: dict[tuple[str, str], int] = {}
    for _, rec in w.ws.records(A):
        key = (rec[f("owner")], rec[f("kind")])
        owners_kinds[key] = owners_kinds.get(key, 0) + 1
    return g.pick_record(A, lambda rid, rec: owners_kinds[(rec[f("owner")], rec[f("kind")])] == 1
                         and (pred is None or pred(rid, rec)), "account")


def balance_lookup(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    _, rec = _account(g)
    owner, kind = rec[f("owner")], rec[f("kind")]
    rid, hit = _find(g, owner, kind, f"I need {owner}'s {kind} account, so I search by owner and account type.")
    bal = hit[f("balance")]
    g.hide(rid, bal)
    g.say(pick(g.rng, (f"What is the current balance of {owner}'s {kind} account?",
                       f"Tell me how much money is in the {kind} account of {owner}.",
                       f"Look up the balance on {owner}'s {kind} account and report it.")))
    ccy = w.data["currency"]
    g.answer_number(bal, f"{owner}'s {kind} account ({rid}) has a balance of {money(bal)} {ccy}.",
                    f"The search result shows the balance: {money(bal)}.")


def _active(f, minimum: float = 0.0):
    return lambda rid, rec: rec[f("status")] == "active" and rec[f("balance")] >= minimum


def transfer_fixed(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    _, a = _account(g, _active(f, 60))
    _, b = _account(g, lambda rid, rec: _active(f)(rid, rec) and rec[f("owner")] != a[f("owner")])
    amount = float(pick(g.rng, (5, 10, 25)) * g.rng.randrange(1, max(2, int(a[f("balance")] * 0.5) // 25)))
    if amount <= 0 or amount > a[f("balance")]:
        raise GenerationError("no affordable amount")
    ida, ha = _find(g, a[f("owner")], a[f("kind")], f"First I find {a[f('owner')]}'s {a[f('kind')]} account.")
    idb, hb = _find(g, b[f("owner")], b[f("kind")], f"Now the receiving account of {b[f('owner')]}.")
    ccy = w.data["currency"]
    what = g.param("goodwill payment amount", amount, f"{money(amount)} {ccy}")
    g.do("transfer", f"Both accounts are active; I transfer {money(amount)} from {ida} to {idb}.",
         source=ida, target=idb, amount=amount)
    A = w.c("accounts")
    g.expect(A, ida, f("balance"), round(ha[f("balance")] - amount, 2))
    g.expect(A, idb, f("balance"), round(hb[f("balance")] + amount, 2))
    g.hide(ida, idb)
    g.say(pick(g.rng, (
        f"Transfer {what} from {a[f('owner')]}'s {a[f('kind')]} account to {b[f('owner')]}'s "
        f"{b[f('kind')]} account.",
        f"Please move {what} out of the {a[f('kind')]} account of {a[f('owner')]} into the "
        f"{b[f('kind')]} account held by {b[f('owner')]}.",
    )))


def _spending(g: GoalBuilder, rid: str) -> tuple[str, str]:
    """A (category, month) with at least one posting on account `rid`, read from the initial data."""
    w, f = g.w, g.w.f
    pairs = sorted({(r[f("category")], r[f("date")][:7]) for _, r in w.ws.records(w.c("transactions"))
                    if r[f("account")] == rid and r[f("category")] != "transfer"})
    if not pairs:
        raise GenerationError("account has no spending")
    return pick(g.rng, pairs)


def _sum_spent(g: GoalBuilder, rid: str, category: str, month: str, thought: str) -> float:
    f = g.w.f
    items = g.find_all("list_transactions", thought, account=rid, category=category, month=month)
    spent = [-t[f("amount")] for t in items]
    if not spent or sum(spent) <= 0 or min(spent) <= 0:
        raise GenerationError("nothing spent")
    ids = [t[id_key(g.w, "list_transactions")] for t in items]
    if len(spent) == 1:
        # One posting is its own sum, but its amount reads "-252.84": BPE splits that as "-|252|.84", and the answer's
        # " 252.84" is a different token sequence, so the model glued the copy to the word before ("spent252.84", the
        # most common ledger failure on seed 7,770,027). The calculator's result prints it after a space.
        return round(g.calc(money(spent[0]), f"One posting, so its amount without the sign is the total: {ids[0]} "
                            f"{money(spent[0])}."), 2)
    return round(g.add_up(spent, "postings", ids), 2)


def total_spent(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    arid, a = _account(g)
    category, month = _spending(g, arid)
    owner, kind, named = a[f("owner")], a[f("kind")], MONTH_NAMES[month]
    rid, _ = _find(g, owner, kind, f"I need the id of {owner}'s {kind} account to list its postings.")
    # The thought restates the instruction's phrase up to the month ("spend on dining in January 2025"), so the month
    # is a copy that continues a matching phrase. Opening on a bare month name, the model wrote "February 2025 is
    # 2025-02" for a January task in 20 of 37 failed spending tasks.
    asked, phrase = pick(g.rng, (
        (f"How much did {owner} spend on {category} in {named} from their {kind} account?",
         f"spend on {category} in {named}"),
        (f"Add up all {category} spending on {owner}'s {kind} account during {named} and tell me the total.",
         f"{category} spending on {owner}'s {kind} account during {named}"),
    ))
    total = _sum_spent(g, rid, category, month,
                       Anchored(f"The {phrase}", f"{named} is {month}. Listing {category} postings of {rid} in "
                                f"{month}; I will add up every page."))
    g.hide(rid, total)
    g.say(asked)
    g.answer_number(total, f"{owner} spent {money(total)} {w.data['currency']} on {category} in {named}.",
                    f"The postings sum to {money(total)}.")


def reimburse(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    arid, a = _account(g, _active(f))
    category, month = _spending(g, arid)
    _, b = _account(g, lambda rid, rec: _active(f, 300)(rid, rec) and rec[f("owner")] != a[f("owner")])
    rid, ha = _find(g, a[f("owner")], a[f("kind")], f"First I find {a[f('owner')]}'s {a[f('kind')]} account.")
    named = MONTH_NAMES[month]
    total = _sum_spent(g, rid, category, month, f"{a[f('owner')]}'s {category} spending of {named}: {named} is "
                       f"{month}. Now the {category} postings of {rid} in {month}.")
    if total > b[f("balance")]:
        raise GenerationError("payer cannot afford")
    src, hb = _find(g, b[f("owner")], b[f("kind")], f"The total is {money(total)}; now the paying account.")
    g.do("transfer", f"Transferring {money(total)} from {src} to {rid}.", source=src, target=rid, amount=total)
    A = w.c("accounts")
    g.expect(A, rid, f("balance"), round(ha[f("balance")] + total, 2))
    g.expect(A, src, f("balance"), round(hb[f("balance")] - total, 2))
    g.hide(rid, src, total)
    g.say(f"{b[f('owner')]} agreed to cover {a[f('owner')]}'s {category} spending of {MONTH_NAMES[month]} "
          f"(on the {a[f('kind')]} account). Transfer exactly that total from {b[f('owner')]}'s {b[f('kind')]} "
          f"account to {a[f('owner')]}'s {a[f('kind')]} account.")


def freeze_low(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    A = w.c("accounts")
    by_owner: dict[str, list[tuple[str, dict]]] = {}
    for rid, rec in w.ws.records(A):
        by_owner.setdefault(rec[f("owner")], []).append((rid, rec))
    owners = [o for o, accs in sorted(by_owner.items())
              if all((A, rid) not in w.claimed for rid, _ in accs)
              and any(r[f("status")] == "active" for _, r in accs)]
    if not owners:
        raise GenerationError("no owner")
    owner = pick(g.rng, owners)
    g.claim(A, *[rid for rid, _ in by_owner[owner]])
    active = sorted(r[f("balance")] for _, r in by_owner[owner] if r[f("status")] == "active")
    threshold = float(int(active[g.rng.randrange(len(active))]) + 1 + g.rng.randrange(40))
    limit = g.param("risk review threshold", threshold, f"{threshold:g}")
    low = g.find_all("find_accounts", f"I list {owner}'s active accounts with a balance below {threshold:g}; each "
                     "one gets frozen.", owner=owner, status="active", balance_below=int(threshold))
    key = id_key(w, "find_accounts")
    if not low:
        raise GenerationError("nothing to freeze")
    for h in low:
        g.do("set_status", f"{h[key]} is listed ({money(h[f('balance')])}): freezing it.",
             id=h[key], status="frozen")
        g.expect(A, h[key], f("status"), "frozen")
        g.hide(h[key])
    g.say(pick(g.rng, (f"Freeze every active account of {owner} whose balance is below {limit}.",
                       f"Risk asked us to freeze all of {owner}'s active accounts holding less than {limit}.")))


def top_up(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    trid, t = _account(g, _active(f))
    _, s = _account(g, lambda rid, rec: _active(f, 100)(rid, rec) and rec[f("owner")] == t[f("owner")])
    goal = float((int(t[f("balance")]) // 50 + 1 + g.rng.randrange(3)) * 50)
    owner = t[f("owner")]
    tid, ht = _find(g, owner, t[f("kind")], f"I need the current balance of {owner}'s {t[f('kind')]} account.")
    need = round(goal - ht[f("balance")], 2)
    if need <= 0 or need > s[f("balance")]:
        raise GenerationError("top-up not affordable")
    # The target is written as the instruction writes it ("3,650.00"; the calculator drops thousands commas), so it
    # is a copy: rewritten as 3650.0, the model wrote 300.0 or 2.0.
    if g.calc(f"{goal:,.2f} - {money(ht[f('balance')])}",
              f"Topping up to exactly {goal:,.2f}: the shortfall is the target minus the balance.") != need:
        raise GenerationError("float rounding differs from exact cents")
    sid, hs = _find(g, owner, s[f("kind")], f"The shortfall is {money(need)}; now the source account.")
    g.do("transfer", f"Transferring the shortfall {money(need)} from {sid} to {tid}.", source=sid, target=tid,
         amount=need)
    A = w.c("accounts")
    g.expect(A, tid, f("balance"), goal)
    g.expect(A, sid, f("balance"), round(hs[f("balance")] - need, 2))
    g.hide(tid, sid, need, ht[f("balance")])
    g.say(f"Top up {owner}'s {t[f('kind')]} account to exactly {goal:,.2f} using money from their "
          f"{s[f('kind')]} account.")


ATOMS = [balance_lookup, transfer_fixed, total_spent, reimburse, freeze_low, top_up]
