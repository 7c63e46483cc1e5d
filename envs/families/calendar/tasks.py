"""Calendar task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.families.calendar.model import CLOSE, DAY_NAMES, OPEN, ROOMS, day_phrase, hm, minutes
from agentkit.envs.family import GoalBuilder, pick


def _event(g: GoalBuilder, pred=None) -> tuple[str, dict]:
    return g.pick_record(g.w.c("events"), pred, "event")


def _locate(g: GoalBuilder, ev: dict, thought: str) -> tuple[str, dict]:
    f = g.w.f
    hits = [h for h in g.find_all("list_events", thought, title=ev[f("title")], day=ev[f("day")])
            if h[f("title")] == ev[f("title")]]
    hit = only(hits, "event")
    return hit[id_key(g.w, "list_events")], hit


def room_of(g: GoalBuilder) -> None:
    f = g.w.f
    _, ev = _event(g)
    rid, hit = _locate(g, ev, f"I search for '{ev[f('title')]}' on {ev[f('day')]}.")
    room = hit[f("room")]
    g.hide(rid, room)
    g.say(f"Which room is the '{ev[f('title')]}' meeting on {day_phrase(ev[f('day')])} in?")
    g.answer_names([room], f"It is in room {room}.", [r for r in ROOMS if r != room], "The event lists its room.")


def count_meetings(g: GoalBuilder) -> None:
    w = g.w
    person, day = pick(g.rng, w.data["staff"]), pick(g.rng, w.data["days"])
    n = g.count_all("list_events", f"I list {person}'s meetings on {day} and count them.",
                    attendee=person, day=day)
    if not n:
        raise GenerationError("no meetings")
    g.hide(n)
    g.say(f"How many meetings does {person} have on {day_phrase(day)}?")
    g.answer_number(n, f"{person} has {n} meeting(s) on {DAY_NAMES[day]}.",
                    f"The result's total is {n}.", tolerance=0)


def _busy(g: GoalBuilder, key: str, value: str, day: str, thought: str) -> list[tuple[int, int]]:
    f = g.w.f
    items = g.find_all("list_events", thought, **{key: value, "day": day})
    return [(minutes(it[f("start")]), minutes(it[f("end")])) for it in items]


def schedule_earliest(g: GoalBuilder) -> None:
    w = g.w
    a, b = g.rng.sample(w.data["staff"], 2)
    day, room = pick(g.rng, w.data["days"]), pick(g.rng, ROOMS)
    dur = pick(g.rng, (30, 60))
    title = pick(g.rng, ("Pairing session", "Quarterly check-in", "Interview debrief", "Contract review"))
    if g.w.has("free_slots") and g.rng.random() < 0.5:
        res = g.do("free_slots", f"I ask for slots where {a}, {b} and room {room} are all free.",
                   attendees=[a, b], day=day, duration=dur, room=room)
        if not res["free_starts"]:
            raise GenerationError("no slot")
        start = minutes(res["free_starts"][0])
    else:
        busy = []
        for key, val in (("attendee", a), ("attendee", b), ("room", room)):
            busy += _busy(g, key, val, day, f"I collect the {key} calendar of {val} on {day}.")
        found = next((s for s in range(OPEN, CLOSE - dur + 1, 30)
                      if not any(bs < s + dur and s < be for bs, be in busy)), None)
        if found is None:
            raise GenerationError("no slot")
        start = found
    g.do("create_event", f"The earliest common free start is {hm(start)}; booking it.", title=title,
         attendees=sorted([a, b]), day=day, start=hm(start), duration=dur, room=room)
    g.hide(hm(start))
    g.say(f"Book a {dur}-minute '{title}' for {a} and {b} in room {room} on {day_phrase(day)}, at the earliest "
          "half-hour start within office hours when both of them and the room are free.")


def push_back(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    _, ev = _event(g, lambda rid, r: minutes(r[f("end")]) + 60 <= CLOSE)
    shift = pick(g.rng, (30, 60, 90))
    rid, hit = _locate(g, ev, f"I find '{ev[f('title')]}' on {ev[f('day')]} to get its id and time.")
    delay = g.param("standard meeting delay", shift, f"{shift} minutes")
    new = hm(minutes(hit[f("start")]) + shift)
    g.do("delay_event", f"It starts at {hit[f('start')]}; pushing it back by {shift} minutes.", id=rid, minutes=shift)
    g.expect(w.c("events"), rid, f("start"), new)
    g.hide(rid, hit[f("start")], new)
    g.say(f"Push the '{ev[f('title')]}' meeting on {day_phrase(ev[f('day')])} back by {delay}.")


def cancel_person_day(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    E = w.c("events")
    person, day = pick(g.rng, w.data["staff"]), pick(g.rng, w.data["days"])
    mine = [rid for rid, r in w.ws.records(E) if r[f("day")] == day and person in r[f("attendees")]]
    if not mine or len(mine) > 3:
        raise GenerationError("bad count")
    g.claim(E, *mine)
    items = g.find_all("list_events", f"I list everything {person} attends on {day}.", attendee=person, day=day)
    key = id_key(w, "list_events")
    for it in items:
        g.do("cancel_event", f"Cancelling {it[key]} ({it[f('title')]}).", id=it[key])
        g.expect(E, it[key], None, None, op="absent")
        g.hide(it[key])
    g.say(f"{person} is out on {day_phrase(day)}. Cancel every meeting they attend that day.")


ATOMS = [room_of, count_meetings, schedule_earliest, push_back, cancel_person_day]
