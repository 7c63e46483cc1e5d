"""Calendar data model: events with attendees, a day, start/end times and a room."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

DAYS = ("2025-07-07", "2025-07-08", "2025-07-09", "2025-07-10", "2025-07-11")
DAY_NAMES = {"2025-07-07": "Monday", "2025-07-08": "Tuesday", "2025-07-09": "Wednesday", "2025-07-10": "Thursday",
             "2025-07-11": "Friday"}
"""All days are in the week of 2025-07-07. Answers name the weekday alone (no stray numbers beside a count);
instructions name it with its date (`day_phrase`), since a weekday alone does not say which week: a reference that
searched 2025-07-07 for "Monday" knew something the agent could not."""
ROOMS = ("Orion", "Lyra", "Vega", "Atlas", "Nova")
TOPICS = ("Budget review", "Design sync", "Sprint planning", "Hiring panel", "Customer call", "Roadmap",
          "Retro", "Security review", "Vendor demo", "Offsite prep", "Data council", "Launch check")
OPEN, CLOSE = 9 * 60, 17 * 60

COLLECTIONS = {"events": ("events", "meetings", "calendar_entries")}
FIELDS = {"title": ("title", "subject", "summary"), "attendees": ("attendees", "participants", "people"),
          "day": ("day", "date"), "start": ("start", "starts_at", "begin"), "end": ("end", "ends_at", "finish"),
          "room": ("room", "location")}


def day_phrase(day: str) -> str:
    """How an instruction names a day: 'Monday (2025-07-07)'."""
    return f"{DAY_NAMES[day]} ({day})"


def hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    staff = people(rng, 4 + difficulty)
    days = DAYS[: 2 + difficulty // 2]
    events: dict[str, Any] = {}
    used: set[tuple[str, str]] = set()
    busy: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for eid in ids(rng, ("EV-", "E", "MTG-"), 6 + 4 * difficulty + rng.randrange(4)):
        for _ in range(10):
            title, day = pick(rng, TOPICS), pick(rng, days)
            start = OPEN + 30 * rng.randrange(14)
            end = start + pick(rng, (30, 60, 90))
            room = pick(rng, ROOMS)
            who = sorted(rng.sample(staff, 2 + rng.randrange(2)))
            keys = [(p, day) for p in who] + [(room, day)]
            if (title, day) in used or end > CLOSE or any(
                    s < end and start < e for k in keys for s, e in busy.get(k, [])):
                continue
            used.add((title, day))
            for k in keys:
                busy.setdefault(k, []).append((start, end))
            events[eid] = {f["title"]: title, f["attendees"]: who, f["day"]: day, f["start"]: hm(start),
                           f["end"]: hm(end), f["room"]: room}
            break
    return ({cols["events"]: events}, {"collections": cols, "fields": f, "today": "2025-07-04"},
            {"staff": staff, "days": days})
