"""Library task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.family import GoalBuilder, pick


def _member(g: GoalBuilder, thought: str) -> tuple[str, str]:
    w, f = g.w, g.w.f
    M = w.c("members")
    names = [r[f("mname")] for _, r in w.ws.records(M)]
    cands = w.unclaimed(M, lambda rid, r: sum(r[f("mname")] in n for n in names) == 1)
    if not cands:
        raise GenerationError("no member")
    mid0 = pick(g.rng, cands)
    g.claim(M, mid0)
    name = w.ws.get(M, mid0)[f("mname")]  # type: ignore[index]
    hit = only(g.find_all("find_members", thought.format(name=name), name=name), "member")
    return hit[id_key(w, "find_members")], name


def copies(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    title = g.pick_record(w.c("books"), what="book")[1][f("title")]
    hit = only(g.find_all("search_catalog", f"I search the catalogue for '{title}'.", title=title), "book")
    g.hide(hit[f("copies")])
    g.say(f"How many copies of '{title}' can be borrowed right now?")
    g.answer_number(hit[f("copies")], f"{hit[f('copies')]} copies of '{title}' are available.", tolerance=0)


def borrow_oldest(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    author = pick(g.rng, w.data["authors"])
    B = w.c("books")
    mine = [rid for rid, r in w.ws.records(B) if r[f("author")] == author]
    if any((B, r) in w.claimed for r in mine):
        raise GenerationError("claimed")
    g.claim(B, *mine)
    mid, name = _member(g, "I need the member id of {name}.")
    items = g.find_first("search_catalog", f"I list books by {author} with a copy available, oldest first.",
                         author=author, min_copies=1, order_by=f("year"))
    oldest = g.first_of(items, f("year"))
    bid = oldest[id_key(w, "search_catalog")]
    g.do("checkout", f"The first result is the oldest available: '{oldest[f('title')]}' ({oldest[f('year')]}).",
         member=mid, book=bid)
    g.expect(B, bid, f("copies"), oldest[f("copies")] - 1)
    g.hide(mid, bid, oldest[f("title")], oldest[f("year")])
    g.say(f"{name} would like to borrow the oldest book by {author} that has a copy available. Check it out to them.")


def return_all(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    mid, name = _member(g, "I look up {name}'s member id.")
    L = w.c("loans")
    theirs = [rid for rid, r in w.ws.records(L) if r[f("member")] == mid and r[f("status")] == "active"]
    if not theirs or len(theirs) > 3:
        raise GenerationError("bad count")
    g.claim(L, *theirs)
    B = w.c("books")
    for rid in theirs:
        book = w.ws.get(L, rid)[f("book")]  # type: ignore[index]
        if (B, book) in w.claimed:
            raise GenerationError("book claimed")
        g.claim(B, book)
    loans = g.find_all("list_loans", f"I list {mid}'s active loans.", member=mid, status="active")
    key = id_key(w, "list_loans")
    for ln in loans:
        g.do("return", f"Returning {ln[key]}.", id=ln[key])
        g.expect(L, ln[key], f("status"), "returned")
        g.hide(ln[key])
    g.hide(mid)
    g.say(f"{name} brought back everything they had borrowed. Record all of their active loans as returned.")


def titles_by(g: GoalBuilder) -> None:
    w = g.w
    author = pick(g.rng, w.data["authors"])
    n = g.count_all("search_catalog", f"I list {author}'s books and count them.", author=author)
    if not n:
        raise GenerationError("none")
    g.hide(n)
    g.say(f"How many different titles by {author} are in the catalogue?")
    g.answer_number(n, f"There are {n} titles by {author}.", f"The result's total is {n}.",
                    tolerance=0)


ATOMS = [copies, borrow_oldest, return_all, titles_by]
