"""Inventory data model: products (stock, price, warehouse) and customer orders with line items."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, size_for, vocab
from agentkit.envs.family import pick

CATEGORIES = ("kitchen", "outdoor", "office", "garden", "toys")
WAREHOUSES = ("north", "south", "east", "west")
STATUSES = ("pending", "shipped", "cancelled")
ADJ = ("Steel", "Bamboo", "Compact", "Deluxe", "Folding", "Solar", "Ceramic", "Wireless", "Rugged", "Classic",
       "Mini", "Smart")
NOUN = ("Water Bottle", "Lamp", "Desk Organizer", "Chair", "Kettle", "Planter", "Backpack", "Stapler", "Puzzle",
        "Lantern", "Cutting Board", "Hose Reel", "Notebook", "Kite")

COLLECTIONS = {"products": ("products", "catalog_items", "skus"), "orders": ("orders", "sales_orders")}
FIELDS = {
    "name": ("name", "title", "product_name"), "category": ("category", "department"),
    "stock": ("stock", "on_hand", "qty_available"), "price": ("price", "unit_price"),
    "warehouse": ("warehouse", "location"), "customer": ("customer", "buyer", "client"),
    "items": ("items", "lines"), "status": ("status", "state"), "total": ("total", "order_total", "amount"),
}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    n = size_for(difficulty, rng, 6, 4)
    names = rng.sample([f"{a} {b}" for a in ADJ for b in NOUN], n)
    skus = ids(rng, ("SKU-", "P", "IT-"), n, (1000, 9000))
    products: dict[str, dict[str, Any]] = {
        sku: {f["name"]: name, f["category"]: pick(rng, CATEGORIES), f["stock"]: rng.randrange(0, 80),
              f["price"]: round(rng.uniform(3, 150), 2), f["warehouse"]: pick(rng, WAREHOUSES)}
        for sku, name in zip(skus, names, strict=True)
    }
    customers = people(rng, 3 + difficulty)
    orders: dict[str, Any] = {}
    for oid in ids(rng, ("ORD-", "O", "SO-"), size_for(difficulty, rng, 4, 3), (100, 900)):
        lines = sorted(rng.sample(skus, 1 + rng.randrange(2)))
        items: list[dict[str, Any]] = [{"sku": s, "qty": 1 + rng.randrange(4)} for s in lines]
        total = round(sum(products[i["sku"]][f["price"]] * i["qty"] for i in items), 2)
        orders[oid] = {f["customer"]: pick(rng, customers), f["items"]: items,
                       f["status"]: pick(rng, STATUSES), f["total"]: total}
    return ({cols["products"]: products, cols["orders"]: orders},
            {"collections": cols, "fields": f, "today": "2025-07-01"}, {"customers": customers})
