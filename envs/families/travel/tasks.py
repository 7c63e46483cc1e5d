"""Travel task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key
from agentkit.envs.families.travel.model import CITY_NAMES, DATE_NAMES, DATES
from agentkit.envs.family import Anchored, GoalBuilder, money, pick


def _route(g: GoalBuilder) -> tuple[str, str, str]:
    o, d = pick(g.rng, g.w.data["routes"])
    return o, d, pick(g.rng, [x for x in DATES if x in _dates(g)])


def _dates(g: GoalBuilder) -> set[str]:
    f = g.w.f
    return {r[f("date")] for _, r in g.w.ws.records(g.w.c("flights"))}


def _cheapest(g: GoalBuilder, o: str, d: str, date: str, cabin: str, thought: str, need_seat: bool) -> dict:
    f = g.w.f
    items = g.find_first("search_flights", thought, origin=o, dest=d, date=date, cabin=cabin,
                         min_seats=1 if need_seat else None, order_by=f("price"))
    return g.first_of(items, f("price"))


def cheapest_fare(g: GoalBuilder) -> None:
    o, d, date = _route(g)
    cabin = pick(g.rng, ("economy", "premium", "business"))
    # The thought opens on the question's own words up to the day, like a booking's: opening on the bare day name, the
    # model wrote another day (the other goal's, or Monday) in all 7 failed fare answers (seed 7,770,039).
    asked = f"cheapest {cabin} fare from {CITY_NAMES[o]} ({o}) to {CITY_NAMES[d]} ({d}) on {DATE_NAMES[date]}"
    best = _cheapest(g, o, d, date, cabin, Anchored(f"The {asked}", f"the day is {date}. I search {cabin} flights "
                     f"{o}->{d} on {date}, cheapest first; the first fare is the lowest."), False)
    price = best[g.w.f("price")]
    g.hide(price, best[id_key(g.w, "search_flights")])
    g.say(f"What is the {asked}?")
    g.answer_number(price, f"The cheapest {cabin} fare is {money(price)}.", f"Lowest fare: {money(price)}.")


def book_cheapest(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    o, d, date = _route(g)
    cabin = pick(g.rng, ("economy", "premium", "business"))
    traveler = pick(g.rng, w.data["travelers"])
    # The thought restates the route in the instruction's own words ("from Berlin to Athens on Monday ..."), so each
    # city and the day are copies that continue a matching phrase; opening on a bare city name, the model wrote
    # "Oslo" first whatever the instruction said.
    best = _cheapest(g, o, d, date, cabin, Anchored(
        f"Flying from {CITY_NAMES[o]} to {CITY_NAMES[d]} on {DATE_NAMES[date]}",
        f"{CITY_NAMES[o]} is {o}, {CITY_NAMES[d]} is {d}, and the day is {date}. I search {cabin} flights {o}->{d} on "
        f"{date} with a free seat, cheapest first."), True)
    fid = best[id_key(w, "search_flights")]
    g.claim(w.c("flights"), fid)
    g.do("book", f"{fid} is the cheapest with seats ({money(best[f('price')])}); booking it.", traveler=traveler,
         flight=fid)
    g.expect(w.c("flights"), fid, f("seats"), best[f("seats")] - 1)
    g.hide(fid, best[f("price")])
    g.say(f"Book {traveler} on the cheapest {cabin} flight from {CITY_NAMES[o]} to {CITY_NAMES[d]} on "
          f"{DATE_NAMES[date]} that still has seats.")


def _confirmed(g: GoalBuilder, traveler: str, thought: str) -> list[dict]:
    return g.find_all("list_bookings", thought, traveler=traveler, status="confirmed")


def _claimable_traveler(g: GoalBuilder) -> str:
    w, f = g.w, g.w.f
    B = w.c("bookings")
    free = sorted({r[f("traveler")] for rid, r in w.ws.records(B)
                   if r[f("status")] == "confirmed" and (B, rid) not in w.claimed})
    if not free:
        raise GenerationError("no traveler")
    t = pick(g.rng, free)
    g.claim(B, *[rid for rid, r in w.ws.records(B) if r[f("traveler")] == t])
    return t


def rebook_next_day(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    traveler = _claimable_traveler(g)
    mine = _confirmed(g, traveler, f"I list {traveler}'s confirmed bookings.")
    if len(mine) != 1:
        raise GenerationError("need exactly one booking")
    bk = mine[0]
    bid = bk[id_key(w, "list_bookings")]
    fl = g.do("get_flight", f"Booking {bid} is on flight {bk[f('flight')]}; I need its route and date.",
              id=bk[f("flight")])
    if fl[f("date")] == DATES[-1] or DATES.index(fl[f("date")]) + 1 >= len(_dates(g)):
        raise GenerationError("no next day")
    nxt = DATES[DATES.index(fl[f("date")]) + 1]
    g.claim(w.c("flights"), bk[f("flight")])
    g.do("cancel", f"Cancelling {bid} first.", id=bid)
    earliest = g.first_of(g.find_first("search_flights", f"It flew on {fl[f('date')]}, so the next day is {nxt}. "
                                   f"Flights {fl[f('origin')]}->{fl[f('dest')]} on {nxt} with a free seat, earliest "
                                   "first.", origin=fl[f("origin")], dest=fl[f("dest")],
                                   date=nxt, min_seats=1, order_by=f("depart")), f("depart"))
    new = earliest[id_key(w, "search_flights")]
    g.claim(w.c("flights"), new)
    g.do("book", f"The earliest with seats is {new} at {earliest[f('depart')]}.", traveler=traveler, flight=new)
    g.expect(w.c("bookings"), bid, f("status"), "cancelled")
    g.hide(bid, new, bk[f("flight")])
    g.say(f"{traveler} has to travel one day later than booked. Cancel their confirmed booking and book them on "
          "the earliest flight with free seats on the same route the following day (any cabin).")


def trip_spend(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    traveler = pick(g.rng, w.data["travelers"])
    total = g.sum_all("list_bookings", f("price"), f"I list {traveler}'s confirmed bookings with their prices added up.",
                      traveler=traveler, status="confirmed")
    g.hide(total)
    g.say(f"How much do {traveler}'s confirmed bookings cost in total?")
    g.answer_number(total, f"{traveler}'s confirmed bookings total {money(total)}.",
                    f"The result's sum is {money(total)}.")


def cancel_to_city(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    traveler = _claimable_traveler(g)
    mine = _confirmed(g, traveler, f"I list {traveler}'s confirmed bookings.")
    dests = {}
    for b in mine:
        fl = g.do("get_flight", f"Checking where flight {b[f('flight')]} goes.", id=b[f("flight")])
        dests[b[id_key(w, "list_bookings")]] = fl[f("dest")]
    if not dests:
        raise GenerationError("none")
    city = pick(g.rng, sorted(set(dests.values())))
    for bid, d in dests.items():
        if d == city:
            g.do("cancel", f"{CITY_NAMES[city]} is {city}, and {bid} flies to {city}; cancelling.", id=bid)
            g.expect(w.c("bookings"), bid, f("status"), "cancelled")
            g.hide(bid)
    g.say(f"{traveler} is no longer going to {CITY_NAMES[city]}: cancel all of their confirmed bookings of flights "
          "to that city.")


ATOMS = [cheapest_fare, book_cheapest, rebook_next_day, trip_spend, cancel_to_city]
