"""Knowledge-base templates: every fact is read from a document found by search, then reported or recorded."""

from __future__ import annotations

import re

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.family import GoalBuilder, pick

FACTS = {
    "warranty": (r"[Ww]arranty(?: period)?(?: of|:) (\d+) months", "warranty period in months"),
    "limit": (r"(?:refund limit for this product is|[Mm]aximum refund without approval:) (\d+) EUR",
              "refund limit in EUR"),
    "tier": (r"(?:Support tier: |get )(bronze|silver|gold)", "support tier"),
}


def lookup(g: GoalBuilder, product: str, fact: str) -> tuple[str, str]:
    """search -> pick the product's own document from the hits -> read it -> extract the fact from its text. Returns
    the value and the document's sentence part that states it (`Warranty period: 24 months`): an answer's thinking
    quotes that part, so the value is copied with the words that say which fact it is."""
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
    return m.group(1), m.group(0)


def fact_answer(g: GoalBuilder) -> None:
    product = pick(g.rng, sorted(g.w.data["products"]))
    fact = pick(g.rng, ("warranty", "limit"))
    raw, said = lookup(g, product, fact)
    value = int(raw)
    g.hide(value)
    g.say(f"According to our knowledge base, what is the {FACTS[fact][1]} for the {product}?")
    g.answer_number(value, f"The {product} has a {FACTS[fact][1]} of {value}.",
                    f"The {FACTS[fact][1]}: the document says '{said}'.", 0)


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
    values, said = {}, []
    for fact in facts:
        raw, phrase = lookup(g, product, fact)
        values[fact] = raw if fact == "tier" else int(raw)
        said.append(f"the {FACTS[fact][1]} is {values[fact]}" + (f" ('{phrase}')" if fact != "tier" else ""))
    args = {{"warranty": "warranty", "limit": "refund_limit", "tier": "tier"}[k]: v for k, v in values.items()}
    # Each value named by its fact, as the instruction names it; "Recording {'limit': 400}" left the model to map
    # `limit` to the tool's field, and it wrote another field or none in all 3 failed refund-limit updates (7,770,039).
    g.do("update_case", f"On {cid}, {' and '.join(said)}; recording it.", id=cid, **args)
    for k, v in args.items():
        g.expect(C, cid, f(k), v)
    g.hide(cid, product, *values.values())
    what = " and ".join(FACTS[k][1] for k in facts)
    g.say(f"{customer} has an open case. Fill in the {what} of the product it is about, exactly as the product's "
          "policy document states.")


def compare(g: GoalBuilder) -> None:
    products = g.w.data["products"]
    a, b = g.rng.sample(sorted(products), 2)
    (ra, said_a), (rb, said_b) = lookup(g, a, "warranty"), lookup(g, b, "warranty")
    va, vb = int(ra), int(rb)
    if va == vb:
        raise GenerationError("tie")
    win, lose = (a, b) if va > vb else (b, a)
    g.hide(va, vb)
    g.say(f"Which comes with the longer warranty: the {a} or the {b}?")
    g.answer_names([win], f"The {win} ({max(va, vb)} months vs {min(va, vb)}).", [lose],
                   # Each period next to its product, then the longer: answered as "Comparing the two warranty
                   # periods.", the model named the other product in all 6 failed comparisons (seed 7,770,039).
                   f"The {a}: '{said_a}'. The {b}: '{said_b}'. {max(va, vb)} months is longer: the {win}.")


ATOMS = [fact_answer, fill_case, compare]
