"""How a person might word a generated task: the same task, tools, state and verifier under many phrasings.

A family's template writes one or two sentences per task kind. A person asks the same thing in many ways: with or
without a greeting, in other words, as a question or a request, with the list of sub-tasks laid out another way,
and with a typo or two. `reword` draws an instruction from that space, leaving every name, id, number, path, date
and quoted title as it was (and checking that it did), so the reference solution and the verifier hold for every
wording.

The space is split in two. `TRAIN` phrasings are what the generator writes by default (and what the local model is
trained on); `HELDOUT` phrasings are never written by default and exist only to measure how an agent copes with
wording it has not seen (`agentkit envs generate --wording heldout` gives the same tasks, reworded). Each variation
point holds out its own alternatives (other greetings and sign-offs, other synonyms and sentence shapes, other list
layouts, other kinds of typo), so a held-out instruction differs from every training one in several places at once.
`TEMPLATE` leaves the family's sentence as it is.

What this cannot do: it rewrites the phrases it knows (the ten hand-written families' templates); an instruction of
a synthesized package is only varied by the generic layers (greeting, sign-off, layout, request form, typos).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentkit.envs.family import pick

Wording = Literal["template", "train", "heldout"]
WORDINGS: tuple[str, ...] = ("template", "train", "heldout")
TEMPLATE: Wording = "template"
TRAIN: Wording = "train"
HELDOUT: Wording = "heldout"


@dataclass(frozen=True)
class Variants:
    """One variation point: a pattern and the phrasings it may become, some for training, some held out.

    The first training alternative is the template's own phrasing (`\\g<0>`) unless the point replaces it always."""

    pattern: re.Pattern[str]
    train: tuple[str, ...]
    heldout: tuple[str, ...]


def _v(pattern: str, train: Sequence[str], heldout: Sequence[str], flags: int = 0) -> Variants:
    return Variants(re.compile(pattern, flags), ("\\g<0>", *train), tuple(heldout))


_DAY = r"((?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \([0-9-]+\))"
_WHO = r"([A-Z][\w'-]+(?: [A-Z][\w'-]+)*)"

PHRASES: tuple[Variants, ...] = (
    # calendar
    _v(rf"How many meetings does {_WHO} have on {_DAY}\?",
       [r"How many meetings are on \1's calendar on \2?", r"Count \1's meetings on \2."],
       [r"What's the number of meetings \1 has on \2?", r"How many meetings is \1 in on \2?"]),
    _v(rf"Which room is the ('[^']+') meeting on {_DAY} in\?",
       [r"In which room is the \1 meeting on \2?", r"Tell me the room of the \1 meeting on \2."],
       [r"What room is the \1 meeting on \2 held in?", r"Where (which room) does the \1 meeting on \2 take place?"]),
    _v(r"Push the ('[^']+') meeting on (\S+ \([0-9-]+\)) back by (\d+) minutes\.",
       [r"Move the \1 meeting on \2 \3 minutes later.", r"Delay the \1 meeting on \2 by \3 minutes."],
       [r"Postpone the \1 meeting on \2 by \3 minutes.", r"Shift the \1 meeting on \2 back \3 minutes."]),
    _v(rf"{_WHO} is out on {_DAY}\. Cancel every meeting they attend that day\.",
       [r"\1 is away on \2. Cancel all the meetings they attend that day.",
        r"\1 is off on \2; cancel every meeting they are in that day."],
       [r"\1 won't be in on \2, so call off every meeting they attend that day.",
        r"\1 is absent on \2. Cancel each meeting they're part of that day."]),
    _v(r"^Book a (\d+)-minute", [r"Schedule a \1-minute"], [r"Set up a \1-minute", r"Arrange a \1-minute"]),
    _v(r"at the earliest half-hour start within office hours when both of them and the room are free",
       ["at the first half-hour slot within office hours when both of them and the room are free"],
       ["at the earliest half-hour start in office hours where both people and the room are available"]),
    # dataset
    _v(r"How many orders in (\S+) from the (\w+) region have a revenue \(units x unit_price\) above (\d+)\?",
       [r"Count the orders in \1 from the \2 region whose revenue (units x unit_price) is above \3."],
       [r"In \1, how many \2-region orders have revenue (units x unit_price) greater than \3?"]),
    _v(r"In (\S+), which region had the highest revenue \(units x unit_price\) in (\w+ \d{4})\?",
       [r"Which region had the highest revenue (units x unit_price) in \2, according to \1?"],
       [r"Looking at \1, what region brought in the most revenue (units x unit_price) in \2?"]),
    _v(r"^Compute the total", ["Work out the total"], ["Calculate the total", "Figure out the total"]),
    _v(r"What is the average revenue per order", ["What's the average revenue per order"],
       ["Tell me the mean revenue per order"]),
    # filesystem
    _v(r"^Delete all files in (\S+) that are owned by the user ('[^']+')\.",
       [r"Remove every file in \1 owned by the user \2.", r"Delete the files in \1 that belong to the user \2."],
       [r"Get rid of all files in \1 whose owner is the user \2.", r"Clean out every file in \1 owned by user \2."]),
    _v(r"^Find the (\w+) service's configuration under (\S+) and tell me its (\w+) setting\.",
       [r"Look up the \1 service's config under \2 and tell me its \3 setting.",
        r"What is the \3 setting in the \1 service's configuration under \2?"],
       [r"Locate the \1 service's configuration under \2 and report its \3 setting.",
        r"Which value does the \1 service's config under \2 have for \3?"]),
    _v(r"How many bytes do the \.log files directly in (\S+) take up altogether\?",
       [r"What is the total size in bytes of the .log files directly in \1?"],
       [r"How much space, in bytes, do the .log files directly inside \1 use in total?"]),
    _v(r"^Set the log level of the (\w+) service to (\w+) in its config file \(in (\S+)\); leave everything else as is\.",
       [r"Change the \1 service's log level to \2 in its config file (in \3) and leave everything else alone."],
       [r"Switch the log level of the \1 service to \2 in its config file (in \3); don't touch anything else."]),
    _v(r"^Move every \.log file in", ["Move each .log file in"], ["Relocate every .log file in"]),
    _v(r"What worker count does the (\w+) service use\?", [r"How many workers does the \1 service use?"],
       [r"How many workers is the \1 service configured with?"]),
    # hr
    _v(r"What is the combined annual salary of all active employees in (\w+)\?",
       [r"What do all active employees in \1 earn per year, combined?",
        r"Add up the annual salaries of every active employee in \1."],
       [r"What's the total yearly salary of the active employees in \1?"]),
    _v(r"Excluding the department director, who is the highest-paid active employee in (\w+)\?",
       [r"Who is the best-paid active employee in \1, not counting the department director?"],
       [r"Leaving out the department director, which active employee in \1 earns the most?"]),
    _v(r"^Move ([A-Z][\w'-]+ [A-Z][\w'-]+) to the (\w+) department, reporting to",
       [r"Transfer \1 to the \2 department, reporting to"], [r"Reassign \1 to the \2 department, under"]),
    _v(rf"Give {_WHO}'s manager a raise of", [r"Raise the salary of \1's manager by"],
       [r"Give a raise to \1's manager of"]),
    _v(rf"Who is {_WHO}'s manager\?", [r"Who does \1 report to?", r"Tell me who \1's manager is."],
       [r"Who's the manager of \1?", r"Which person manages \1?"]),
    _v(rf"^Promote {_WHO}: prefix their current title with", [r"Promote \1 by prefixing their current title with"],
       [r"\1 gets a promotion: put in front of their current title"]),
    # inventory
    _v(r"How many units of the (.+?) do we have in stock\?", [r"How many \1 units are in stock?"],
       [r"What's our current stock of the \1?"]),
    _v(r"Check the stock level of our (.+?) and tell me\.", [r"Tell me the stock level of our \1."],
       [r"Look up how much stock we hold of our \1."]),
    _v(r"^Place an order for", ["Create an order for"], ["Put in an order for", "Order for"]),
    _v(r"wants to buy (.+?)\. Create the order\.", [r"would like to buy \1. Please create the order."],
       [r"is buying \1. Set up the order."]),
    _v(r"changed their mind: cancel their pending order and put the items back in stock\.",
       ["changed their mind. Cancel their pending order so the items go back into stock."],
       ["no longer wants their order: cancel the pending one and return its items to stock."]),
    _v(r"Cancel the open \(pending\) order of", ["Cancel the pending order of"], ["Call off the pending order of"]),
    _v(r"find the (\w+) product with the lowest stock and restock it to exactly (\d+) units\.",
       [r"restock the \1 product with the lowest stock so it has exactly \2 units."],
       [r"pick the \1 product that has the least stock and bring it up to exactly \2 units."]),
    _v(r"What is the combined value of all shipped orders of", ["What is the total value of the shipped orders of"],
       ["How much are all the shipped orders of", "What do the shipped orders add up to for"]),
    # knowledge
    _v(r"^According to our knowledge base, what is the (.+?) for the (.+?)\?",
       [r"What is the \1 for the \2, according to our knowledge base?",
        r"Check our knowledge base: what is the \1 for the \2?"],
       [r"Per our knowledge base, what's the \1 for the \2?", r"Can you find the \1 for the \2 in the knowledge base?"]),
    _v(r"has an open case\. Fill in the", ["has a case open. Fill in the"], ["opened a case. Fill in the"]),
    _v(r"exactly as the product's policy document states\.", ["exactly as written in the product's policy document."],
       ["word for word from the product's policy document."]),
    _v(r"Which comes with the longer warranty:", ["Which has the longer warranty:"],
       ["Which of these has a longer warranty:"]),
    # ledger
    _v(rf"^Freeze every active account of {_WHO} whose balance is below",
       [r"Freeze all active accounts of \1 with a balance below"],
       [r"Lock every active account \1 holds whose balance is under"]),
    _v(r"Look up the balance on (.+?) account and report it\.", [r"What is the balance on \1 account?"],
       [r"Tell me how much is in \1 account."]),
    _v(r"Risk asked us to freeze all of", ["The risk team wants us to freeze all of"],
       ["Compliance asked us to freeze all of"]),
    _v(r"^Transfer (\S+ [A-Z]{3}) from", [r"Move \1 from"], [r"Send \1 from"]),
    _v(r"How much did (.+?) spend on", [r"What did \1 spend on"], [r"How much was spent by \1 on"]),
    _v(r"^Top up (.+?) to exactly", [r"Bring \1 up to exactly"], [r"Refill \1 to exactly"]),
    # library
    _v(r"How many different titles by (.+?) are in the catalogue\?",
       [r"How many distinct titles by \1 are in the catalogue?", r"Count the different titles by \1 in the catalogue."],
       [r"How many distinct titles by \1 does the catalogue hold?",
        r"What's the number of unique titles by \1 in the catalogue?"]),
    _v(r"How many copies of ('[^']+') can be borrowed right now\?",
       [r"How many copies of \1 are available to borrow right now?"],
       [r"How many copies of \1 could someone borrow at the moment?"]),
    _v(r"would like to borrow the oldest book by (.+?) that has a copy available\. Check it out to them\.",
       [r"wants the oldest book by \1 that has a copy available. Check it out to them."],
       [r"would like to take out the oldest book by \1 with a copy available. Lend it to them."]),
    _v(r"brought back everything they had borrowed\. Record all of their active loans as returned\.",
       ["returned everything they had borrowed. Mark all of their active loans as returned."],
       ["has given back all they borrowed. Record each of their active loans as returned."]),
    # tickets
    _v(r"^Close all of (.+?)'s resolved tickets\.", [r"Close every resolved ticket of \1."],
       [r"Mark all of \1's resolved tickets as closed."]),
    _v(r"How many open tickets are currently assigned to", ["How many open tickets are assigned right now to"],
       ["What's the count of open tickets assigned to"]),
    _v(r"^Escalate to high priority all of", ["Raise to high priority all of"], ["Bump to high priority all of"]),
    _v(r"^Assign (.+?)'s oldest open", [r"Give \1's oldest open"], [r"Hand \1's oldest open"]),
    # travel
    _v(r"^Book (.+?) on the cheapest (\w+) flight", [r"Put \1 on the cheapest \2 flight"],
       [r"Get \1 a seat on the cheapest \2 flight"]),
    _v(r"that still has seats\.", ["that still has seats left."], ["with seats still free."]),
    _v(r"What is the cheapest (\w+) fare from", [r"What's the lowest \1 fare from"], [r"Find me the cheapest \1 fare from"]),
    _v(r"is no longer going to (\w+): cancel all of their confirmed bookings of flights to that city\.",
       [r"is no longer travelling to \1: cancel all of their confirmed bookings of flights to that city."],
       [r"won't be going to \1 after all. Cancel every confirmed booking they have on flights to \1."]),
    _v(r"How much do (.+?)'s confirmed bookings cost in total\?",
       [r"What is the total cost of \1's confirmed bookings?"], [r"How much do the confirmed bookings of \1 come to?"]),
)

# Generic layers ------------------------------------------------------------------------------------------------------

_OPENER = re.compile(r"^(?:Hi! |Please handle this for me\. |I need your help with the following\. )")
OPENERS: dict[str, tuple[str, ...]] = {
    "train": ("", "", "", "Hi! ", "Hello, ", "Please handle this for me. ", "I need your help with the following. ",
              "Good morning. ", "Quick request: "),
    "heldout": ("Hi there! ", "Morning! ", "Hello again. ", "Could you help me out? ", "Hey, quick one: "),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "train": ("", "", "", " Thanks!", " Thank you.", " Thanks in advance."),
    "heldout": (" Cheers!", " Much appreciated.", " Thx."),
}
_HEADER = re.compile(r"(?m)^(?:Please do all of this:|Things to do:|Here is the list:)$")
HEADERS: dict[str, tuple[str, ...]] = {
    "train": ("Please do all of this:", "Things to do:", "Here is the list:", "A few things:"),
    "heldout": ("Could you take care of these:", "My to-do list for you:"),
}
_NUMBERED = re.compile(r"(?m)^(\d+)\. ")
_LETTERED = re.compile(r"\(([a-z])\) ")
MARKERS: dict[str, tuple[str, ...]] = {"train": ("{n}. ", "- ", "({a}) "), "heldout": ("{n}) ", "* ")}
_REQUEST_VERBS = ("Book", "Cancel", "Close", "Assign", "Escalate", "Freeze", "Transfer", "Move", "Delete", "Set",
                  "Place", "Create", "Give", "Promote", "Raise", "Cut", "Record", "Fill in", "Compute", "Check",
                  "Look up", "Find", "Push", "Top up", "Schedule", "Remove", "Put", "Change", "Delay", "Count")
_IMPERATIVE = re.compile(rf"(?:(?<=^)|(?<=\n)|(?<=\n- )|(?<=\n\d\. )|(?<=\) )|(?<=\. ))({'|'.join(_REQUEST_VERBS)}) ([^.\n]*?)\.(?=$|\s)")
REQUESTS: dict[str, tuple[str, ...]] = {
    "train": ("{v} {rest}.", "{v} {rest}.", "Please {lv} {rest}.", "Could you {lv} {rest}?"),
    "heldout": ("Can you {lv} {rest}?", "I'd like you to {lv} {rest}.", "Would you {lv} {rest}?"),
}
TYPO_WORDS = frozenset((
    "please", "every", "meeting", "meetings", "account", "accounts", "tickets", "orders", "order", "flight",
    "flights", "bookings", "balance", "salary", "employees", "employee", "department", "price", "stock", "units",
    "files", "configuration", "setting", "catalogue", "copies", "borrowed", "currently", "assigned", "cheapest",
    "combined", "confirmed", "according", "knowledge", "warranty", "product", "manager", "highest", "lowest",
    "exactly", "earliest", "altogether", "directly", "returned", "available", "borrow", "oldest", "spending",
    "transfer", "their", "whose", "below", "above", "during", "which", "would", "still", "seats", "level", "leave",
    "everything", "handle", "following", "things", "right", "cancel", "check", "create", "meeting", "number",
    "revenue", "region", "service", "minutes", "office", "hours", "record", "loans", "change", "active", "total",
))
"""Words a typo may hit: the templates' own words. Names, ids, numbers, paths, departments, cities and cabins are
never hit (a misspelt one would make the task ambiguous, not merely misspelt); two status words a filter copies
("active", "confirmed") are, as a person misspells them, and their meaning stays plain."""


def _typo(word: str, rng: random.Random, kinds: Sequence[str]) -> str:
    i = 1 + int(rng.random() * (len(word) - 2))
    kind = kinds[int(rng.random() * len(kinds))]
    if kind == "swap":
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    neighbours = _KEYBOARD.get(word[i], word[i])
    return word[:i] + neighbours[int(rng.random() * len(neighbours))] + word[i + 1 :]


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEYBOARD = {c: "".join(r[j] for j in (k - 1, k + 1) if 0 <= j < len(r)) for r in _ROWS for k, c in enumerate(r)}
TYPO_KINDS: dict[str, tuple[str, ...]] = {"train": ("swap", "drop"), "heldout": ("double", "key")}


def _protected(text: str) -> set[str]:
    """What a rewording must keep: quoted titles, paths and file names, numbers, and capitalised words that do
    not open a sentence (names, cities, products)."""
    found: set[str] = set()
    found.update(re.findall(r"(?<!\w)'[^'\n]+'(?!\w)", text))
    found.update(re.findall(r"\S*[/_.]\S*\w", text))
    found.update(re.findall(r"\d+(?:[.,]\d+)*", re.sub(r"(?m)^\d+\. ", "", text)))
    found.update(re.findall(r"(?<=[a-z,;(] )[A-Z][\w-]+", text))
    return found


def _keeps(original: str, reworded: str) -> bool:
    """Every protected piece of `original` occurs in `reworded` at least as often (list numbers aside)."""
    before, after = re.sub(r"(?m)^\d+\. ", "", original), re.sub(r"(?m)^\d+[.)] ", "", reworded)
    return all(after.count(k) >= before.count(k) for k in _protected(original))


def _lower_first(text: str) -> str:
    """Lower-case the first letter, as people often type, unless the first word is a name."""
    first = text.split(" ", 1)[0]
    return text if not first or first[:1].islower() or first in _protected(" a " + text) else text[0].lower() + text[1:]


def reword(instruction: str, rng: random.Random, wording: Wording) -> str:
    """The instruction in a phrasing drawn from `wording`'s space (TEMPLATE: unchanged). Deterministic in `rng`.
    Falls back to the template's phrasing if a rewrite would lose a name, number, path or quoted title."""
    if wording == TEMPLATE:
        return instruction
    if wording not in (TRAIN, HELDOUT):
        raise ValueError(f"wording must be one of {', '.join(WORDINGS)}, got {wording!r}")
    held = wording == HELDOUT
    text = _OPENER.sub("", instruction)
    for point in PHRASES:
        options = point.heldout if held and point.heldout else point.train
        if point.pattern.search(text):
            choice = pick(rng, options)  # one phrasing per point, every match of it alike
            text = point.pattern.sub(lambda m, choice=choice: m.expand(choice), text)
    text = _IMPERATIVE.sub(lambda m: _request(m, rng, wording), text)
    text = _layout(text, rng, wording)
    text = _typos(text, rng, wording)
    if rng.random() < 0.15:
        text = _lower_first(text)
    opener, closer = pick(rng, OPENERS[wording]), pick(rng, CLOSERS[wording])
    if held and not opener and not closer:  # held-out text always differs from training text in its frame, too
        opener = pick(rng, [o for o in OPENERS[HELDOUT] if o])
    if opener.endswith(", ") or opener.endswith(": "):
        text = _lower_first(text)
    out = f"{opener}{text}{closer}"
    return out if _keeps(instruction, out) else instruction


def _request(m: re.Match[str], rng: random.Random, wording: Wording) -> str:
    verb, rest = m.group(1), m.group(2)
    form = pick(rng, REQUESTS[wording])
    return form.format(v=verb, lv=verb.lower(), rest=rest)


def _layout(text: str, rng: random.Random, wording: Wording) -> str:
    if not _HEADER.search(text):
        return text
    text = _HEADER.sub(lambda m: pick(rng, HEADERS[wording]), text, count=1)
    marker = pick(rng, MARKERS[wording])
    head, _, body = text.partition("\n")
    items = [p for p in re.split(r"(?m)^(?:\d+\. |- )|\([a-z]\) ", body) if p.strip()]
    lines = [marker.format(n=i, a=chr(96 + i)) + p.strip() for i, p in enumerate(items, 1)]
    sep = " " if "{a}" in marker else "\n"
    return head + "\n" + sep.join(lines)


def _typos(text: str, rng: random.Random, wording: Wording) -> str:
    if rng.random() >= 0.3:
        return text
    kinds = TYPO_KINDS[wording]
    quoted = [q.span() for q in re.finditer(r"(?<!\w)'[^'\n]+'(?!\w)", text)]
    spots = [m for m in re.finditer(r"\b[a-z]{5,}\b", text)
             if m.group(0) in TYPO_WORDS and not any(a <= m.start() < b for a, b in quoted)]
    if not spots:
        return text
    for m in sorted({pick(rng, spots) for _ in range(1 + int(rng.random() * 2))}, key=lambda m: -m.start()):
        text = text[: m.start()] + _typo(m.group(0), rng, kinds) + text[m.end() :]
    return text


def wording_rng(task_seed: int, wording: Wording) -> random.Random:
    """The draws of one task's wording: apart from the world's generator, so the task is the same in every
    wording."""
    return random.Random(f"wording|{wording}|{task_seed}")
