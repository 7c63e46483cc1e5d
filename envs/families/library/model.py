"""Library data model: a catalogue (books with available copies), members and loans."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

GENRES = ("mystery", "science", "history", "fantasy", "poetry", "travel")
AUTHORS = ("Ada Quill", "Bram Holloway", "Cora Lind", "Dmitri Vale", "Esme Arden", "Farid Noor", "Greta Moss",
           "Hugo Brandt", "Iris Calder", "Jun Ito")
WORDS = ("Silent", "River", "Glass", "Northern", "Hidden", "Winter", "Paper", "Iron", "Distant", "Golden", "Lost",
         "Burning")
NOUNS = ("Garden", "Atlas", "Harbor", "Orchard", "Signal", "Lantern", "Archive", "Meridian", "Tide", "Cathedral")

COLLECTIONS = {"books": ("books", "catalogue", "titles"), "members": ("members", "patrons"),
               "loans": ("loans", "checkouts")}
FIELDS = {"title": ("title", "name"), "author": ("author", "writer", "by"), "year": ("year", "published"),
          "copies": ("copies_available", "available", "in_stock"), "genre": ("genre", "subject"),
          "member": ("member_id", "patron"), "book": ("book_id", "item"), "status": ("status", "state"),
          "due": ("due", "due_date"), "mname": ("name", "full_name")}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    n = 10 + 4 * difficulty + rng.randrange(4)
    titles = rng.sample([f"The {a} {b}" for a in WORDS for b in NOUNS], n)
    authors = rng.sample(AUTHORS, 4 + difficulty)
    years = rng.sample(range(1950, 2025), n)
    books = {bid: {f["title"]: t, f["author"]: pick(rng, authors), f["year"]: y, f["copies"]: rng.randrange(0, 4),
                   f["genre"]: pick(rng, GENRES)}
             for bid, t, y in zip(ids(rng, ("BK", "B-", "ISBN-"), n, (100, 900)), titles, years, strict=True)}
    names = people(rng, 3 + difficulty)
    members = {mid: {f["mname"]: nm} for mid, nm in zip(ids(rng, ("M-", "PAT", "LIB-"), len(names)), names,
                                                          strict=True)}
    loans: dict[str, Any] = {}
    for lid in ids(rng, ("L-", "LN", "CO-"), 4 + 2 * difficulty, (100, 900)):
        loans[lid] = {f["member"]: pick(rng, list(members)), f["book"]: pick(rng, list(books)),
                      f["status"]: pick(rng, ("active", "active", "returned")),
                      f["due"]: f"2025-07-{rng.randrange(1, 29):02d}"}
    return ({cols["books"]: books, cols["members"]: members, cols["loans"]: loans},
            {"collections": cols, "fields": f, "today": "2025-07-01"}, {"authors": authors, "members": names})
