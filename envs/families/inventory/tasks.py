"""Inventory task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.family import GoalBuilder, money, pick


def _product(g: GoalBuilder, pred=None) -> tuple[str, dict]:
    w, f = g.w, g.w.f
    P = w.c("products")
    names = [r[f("name")] for _, r in w.ws.records(P)]
    return g.pick_record(P, lambda rid, r: not any(r[f("name")] in n and r[f("name")] != n for n in names)
                         and (pred is None or pred(rid, r)), "product")


def _find(g: GoalBuilder, name: str, thought: str) -> tuple[str, dict]:
    hit = only(g.find_all("find_products", thought, name=name), "product")
    return hit[id_key(g.w, "find_products")], hit


def stock_lookup(g: GoalBuilder) -> None:
    f = g.w.f
    _, p = _product(g)
    sku, hit = _find(g, p[f("name")], f"I search the catalogue for '{p[f('name')]}'.")
    g.hide(sku, hit[f("stock")])
    g.say(pick(g.rng, (f"How many units of the {p[f('name')]} do we have in stock?",
                       f"Check the stock level of our {p[f('name')]} and tell me.")))
    g.answer_number(hit[f("stock")], f"We have {hit[f('stock')]} units of the {p[f('name')]} ({sku}).",
                    "The catalogue entry shows the stock.", tolerance=0)


def place_order(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    n = 1 if w.difficulty <= 2 else 1 + g.rng.randrange(2)
    picks = [_product(g, lambda rid, r: r[f("stock")] >= 3) for _ in range(n)]
    customer = pick(g.rng, w.data["customers"])
    lines = []
    for _, p in picks:
        sku, hit = _find(g, p[f("name")], f"I need the SKU of the {p[f('name')]}.")
        lines.append({"sku": sku, "qty": 1 + g.rng.randrange(min(3, hit[f("stock")]))})
        g.expect(w.c("products"), sku, f("stock"), hit[f("stock")] - lines[-1]["qty"])
        g.hide(sku)
    g.do("place_order", "All items are in stock; placing the order.", customer=customer, items=lines)
    names = {ln["sku"]: p[f("name")] for ln, (_, p) in zip(lines, picks, strict=True)}
    what = " and ".join(f"{ln['qty']} x {names[ln['sku']]}" for ln in lines)
    g.say(pick(g.rng, (f"Place an order for {customer}: {what}.",
                       f"{customer} wants to buy {what}. Create the order.")))


def cancel_pending(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    ORD = w.c("orders")
    per: dict[str, list[str]] = {}
    for rid, r in w.ws.records(ORD):
        if r[f("status")] == "pending":
            per.setdefault(r[f("customer")], []).append(rid)
    cands = sorted(c for c, rids in per.items() if len(rids) == 1 and (ORD, rids[0]) not in w.claimed)
    if not cands:
        raise GenerationError("no single pending order")
    customer = pick(g.rng, cands)
    oid0 = per[customer][0]
    order = w.ws.get(ORD, oid0)
    assert order is not None
    for line in order[f("items")]:
        g.claim(w.c("products"), line["sku"])
    g.claim(ORD, oid0)
    hit = only(g.find_all("list_orders", f"I look for {customer}'s pending orders.", customer=customer,
                          status="pending"), "order")
    oid = hit[id_key(w, "list_orders")]
    g.do("cancel_order", f"{oid} is the only pending order; cancelling it returns its items to stock.", id=oid)
    g.expect(ORD, oid, f("status"), "cancelled")
    g.hide(oid)
    g.say(pick(g.rng, (f"{customer} changed their mind: cancel their pending order and put the items back in stock.",
                       f"Cancel the open (pending) order of {customer}.")))


def restock_lowest(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    P = w.c("products")
    groups: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for rid, r in w.ws.records(P):
        groups.setdefault((r[f("category")], r[f("warehouse")]), []).append((rid, r))
    cands = sorted(k for k, v in groups.items() if len(v) >= 2 and all((P, rid) not in w.claimed for rid, _ in v))
    if not cands:
        raise GenerationError("no group")
    cat, wh = pick(g.rng, cands)
    g.claim(P, *[rid for rid, _ in groups[(cat, wh)]])
    items = g.find_first("find_products", f"I list {cat} products in the {wh} warehouse, lowest stock first.",
                         category=cat, warehouse=wh, order_by=f("stock"))
    low = g.first_of(items, f("stock"))
    target = (low[f("stock")] // 10 + 2 + g.rng.randrange(4)) * 10
    key = id_key(w, "find_products")
    add = g.calc(f"{target} - {low[f('stock')]}", f"{low[key]} has the lowest stock ({low[f('stock')]}); the units "
                 f"that bring it to {target}.")  # fmt: skip
    g.do("restock", f"Adding {add} units.", id=low[key], quantity=add)
    g.expect(P, low[key], f("stock"), target)
    g.hide(low[key], low[f("name")], target - low[f("stock")])
    g.say(f"In the {wh} warehouse, find the {cat} product with the lowest stock and restock it to exactly "
          f"{target} units.")


def shipped_value(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    ORD = w.c("orders")
    counts: dict[str, int] = {}
    for _, r in w.ws.records(ORD):
        if r[f("status")] == "shipped":
            counts[r[f("customer")]] = counts.get(r[f("customer")], 0) + 1
    if not counts:
        raise GenerationError("no shipped orders")
    customer = pick(g.rng, sorted(counts))
    total = g.sum_all("list_orders", f("total"), f"I list {customer}'s shipped orders with their totals added up.",
                      customer=customer, status="shipped")
    g.hide(total)
    g.say(f"What is the combined value of all shipped orders of {customer}?")
    g.answer_number(total, f"{customer}'s shipped orders total {money(total)}.", f"The result's sum is {money(total)}.")


def reprice(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    _, p = _product(g)
    pct = pick(g.rng, (5, 10, 15, 20))
    # Even odds: at 0.6 the model leant to raising, and wrote a raise for 9 of 10 failed cuts (seed 7,770,039).
    up = g.rng.random() < 0.5
    verb = "Raise" if up else "Cut"
    sku, hit = _find(g, p[f("name")], f"I look up the {p[f('name')]} to get its id.")
    scaled = round(hit[f("price")] * 100) * (100 + pct if up else 100 - pct)  # in 1/100 cents, exact
    if scaled % 100 == 50:
        raise GenerationError("exactly half a cent: the task should not hinge on the rounding rule")
    new = (scaled + 50) // 100 / 100
    by = g.param("seasonal price adjustment", pct, f"{pct}%")
    # `adjust_price` takes the instruction's verb and number as they are; the calculator path (the model writing
    # the factor's sign and the new price itself) passed 4 of 15 (seed 7,770,043).
    res = g.do("adjust_price", f"{sku} costs {money(hit[f('price')])}; {verb.lower()} it by {pct}%.", id=sku,
               direction=verb.lower(), percent=pct)
    if res["price"] != new:
        raise GenerationError("the tool's rounding differs from exact cents")
    g.expect(w.c("products"), sku, f("price"), new)
    g.hide(sku, hit[f("price")], new)
    g.say(f"{verb} the price of the {p[f('name')]} by {by} (round to cents).")


ATOMS = [stock_lookup, place_order, cancel_pending, restock_lowest, shipped_value, reprice]
