"""Knowledge-base data model: product policy documents (the corpus) and support cases that need their facts.

Facts live only in document text, so an agent must search and read; near-miss products (same line, other model)
make the search step matter.
"""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

LINES = ("Zephyr", "Aurora", "Nimbus", "Quasar", "Helix", "Orbit", "Pulse", "Vertex")
KINDS = ("router", "headset", "smartwatch", "speaker", "e-reader", "camera")
TIERS = ("bronze", "silver", "gold")

COLLECTIONS = {"cases": ("cases", "claims", "requests")}
FIELDS = {"customer": ("customer", "requester"), "product": ("product", "item"), "status": ("status", "state"),
          "refund_limit": ("refund_limit", "max_refund"), "warranty": ("warranty_months", "coverage_months"),
          "tier": ("support_tier", "tier")}


def policy_text(name: str, kind: str, warranty: int, days: int, limit: int, tier: str, style: int) -> str:
    if style == 0:
        return (f"The {name} {kind} ships with a limited warranty of {warranty} months from the date of purchase. "
                f"Customers may return it within {days} days. Refunds above {limit} EUR need manager approval, so "
                f"the refund limit for this product is {limit} EUR. Support tier: {tier}.")
    return (f"Policy sheet for {name} ({kind}). Warranty period: {warranty} months. Return window: {days} days. "
            f"Maximum refund without approval: {limit} EUR. Customers of this product get {tier} support.")


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    products: dict[str, dict[str, Any]] = {}
    for line in rng.sample(LINES, 3 + difficulty // 2):
        kind = pick(rng, KINDS)
        for model in rng.sample(("X1", "X2", "Pro", "Mini", "Max"), 2):
            products[f"{line} {model}"] = {
                "kind": kind, "warranty": pick(rng, (6, 12, 18, 24, 36)), "days": pick(rng, (14, 30, 45, 60)),
                "limit": pick(rng, (50, 75, 120, 150, 250, 400)), "tier": pick(rng, TIERS),
            }
    corpus = []
    doc_ids = ids(rng, ("KB-", "DOC", "ART-"), len(products) + 3, (100, 900))
    style = rng.randrange(2)
    for did, (name, p) in zip(doc_ids, products.items(), strict=False):
        corpus.append({"id": did, "title": f"{name} warranty and returns",
                       "text": policy_text(name, p["kind"], p["warranty"], p["days"], p["limit"], p["tier"], style)})
    for did, (title, text) in zip(doc_ids[len(products):], (
        ("How to contact support", "Open a case with the product name and your order number. Gold tier is 24/7."),
        ("Shipping times", "Orders ship within 2 business days. Express shipping is available in most regions."),
        ("Refund processing", "Approved refunds reach the original payment method within 5 to 10 days."),
    ), strict=False):
        corpus.append({"id": did, "title": title, "text": text})
    rng.shuffle(corpus)
    customers = people(rng, 3 + difficulty)
    cases: dict[str, Any] = {}
    names = list(products)
    for cid in ids(rng, ("C-", "CASE", "RQ-"), 3 + 2 * difficulty, (100, 900)):
        cases[cid] = {f["customer"]: pick(rng, customers), f["product"]: pick(rng, names), f["status"]: "open",
                      f["refund_limit"]: None, f["warranty"]: None, f["tier"]: None}
    return ({cols["cases"]: cases}, {"collections": cols, "fields": f, "today": "2025-07-01"},
            {"products": products, "corpus": corpus})
