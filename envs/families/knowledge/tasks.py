"""Knowledge-base templates: every fact is read from a document found by search, then reported or recorded."""

from __future__ import annotations

import re

from envs.errors import GenerationError
from envs.families._kit import id_key, only
from envs.family import GoalBuilder, pick

FACTS = {
    "warranty": (r"[Ww]arranty(?: period)?(?: of|:) (\d+) months", "warranty period in months"),
    "limit": (r"(?:refund limit for this product is|[Mm]aximum refund without approval:) (\d+) EUR",
              "refund limit in EUR"),
    "tier": (r"(?:Support tier: |get )(bronze|silver|gold)", "support tier"),
}


def lookup(g: GoalBuilder, product: str, fact: str) -> str:
    """search -> pick the product's own document from the hits -> read it -> extract the fact from its text."""
    words = {"warranty": "warranty", "limit": "refund", "tier": "support"}[fact]
    hits = g.do("search_docs", f"I search the knowledge base for the {product} policy.", query=f"{product} {words}")
    doc = next((h for h in hits if h["title"].startswith(product + " ")), None)
    if doc is None:
        raise GenerationError("search does not surface the document")
    text = g.do("read_doc", f"'{doc['title']}' ({doc['doc_id']}) is the right document; reading it.",
                doc_id=doc["doc_id"])["text"]
    m = re.search(FACTS[fact][0], text)
    if m is None:
        raise GenerationError("fact not in text")
    g.hide(doc["doc_id"])
    return m.group(1)


def fact_answer(g: GoalBuilder) -> None:
    product = pick(g.rng, sorted(g.w.data["products"]))
    fact = pick(g.rng, ("warranty", "limit"))
    value = int(lookup(g, product, fact))
    g.hide(value)
    g.say(f"According to our knowledge base, what is the {FACTS[fact][1]} for the {product}?")
    g.answer_number(value, f"The {product} has a {FACTS[fact][1]} of {value}.", f"The document states {value}.", 0)


def fill_case(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    C = w.c("cases")
    cands = w.unclaimed(C, lambda rid, r: sum(1 for _, o in w.ws.records(C)
                                              if o[f("customer")] == r[f("customer")]) == 1)
    if not cands:
        raise GenerationError("no case")
    rid0 = pick(g.rng, cands)
    g.claim(C, rid0)
    case = w.ws.get(C, rid0)
    assert case is not None
    customer = case[f("customer")]
    hit = only(g.find_all("list_cases", f"I find {customer}'s case.", customer=customer), "case")
    cid, product = hit[id_key(w, "list_cases")], hit[f("product")]
    facts = g.rng.sample(["warranty", "limit", "tier"], 1 + (w.difficulty >= 4))
    values = {}
    for fact in facts:
        raw = lookup(g, product, fact)
        values[fact] = raw if fact == "tier" else int(raw)
    args = {{"warranty": "warranty", "limit": "refund_limit", "tier": "tier"}[k]: v for k, v in values.items()}
    g.do("update_case", f"Recording {values} on {cid}.", id=cid, **args)
    for k, v in args.items():
        g.expect(C, cid, f(k), v)
    g.hide(cid, product, *values.values())
    what = " and ".join(FACTS[k][1] for k in facts)
    g.say(f"{customer} has an open case. Fill in the {what} of the product it is about, exactly as the product's "
          "policy document states.")


def compare(g: GoalBuilder) -> None:
    products = g.w.data["products"]
    a, b = g.rng.sample(sorted(products), 2)
    va, vb = int(lookup(g, a, "warranty")), int(lookup(g, b, "warranty"))
    if va == vb:
        raise GenerationError("tie")
    win, lose = (a, b) if va > vb else (b, a)
    g.hide(va, vb)
    g.say(f"Which comes with the longer warranty: the {a} or the {b}?")
    g.answer_names([win], f"The {win} ({max(va, vb)} months vs {min(va, vb)}).", [lose],
                   "Comparing the two warranty periods.")


ATOMS = [fact_answer, fill_case, compare]
