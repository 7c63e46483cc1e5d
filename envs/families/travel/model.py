"""Travel data model: flights (route, date, departure, cabin, price, seats) and traveller bookings."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

CITIES = ("LIS", "BER", "OSL", "MAD", "ROM", "VIE", "DUB", "PRG", "ATH", "CPH")
CITY_NAMES = {"LIS": "Lisbon", "BER": "Berlin", "OSL": "Oslo", "MAD": "Madrid", "ROM": "Rome", "VIE": "Vienna",
              "DUB": "Dublin", "PRG": "Prague", "ATH": "Athens", "CPH": "Copenhagen"}
DATES = ("2025-08-04", "2025-08-05", "2025-08-06", "2025-08-07")
DATE_NAMES = {"2025-08-04": "Monday the 4th of August 2025", "2025-08-05": "Tuesday the 5th of August 2025",
              "2025-08-06": "Wednesday the 6th of August 2025", "2025-08-07": "Thursday the 7th of August 2025"}
CABINS = ("economy", "premium", "business")

COLLECTIONS = {"flights": ("flights", "departures", "schedules"), "bookings": ("bookings", "reservations", "trips")}
FIELDS = {"origin": ("origin", "from", "dep_airport"), "dest": ("destination", "to", "arr_airport"),
          "date": ("date", "flight_date"), "depart": ("departs", "departure_time", "dep_time"),
          "cabin": ("cabin", "fare_class"), "price": ("price", "fare"), "seats": ("seats_left", "availability"),
          "traveler": ("traveler", "passenger", "guest"), "flight": ("flight_id", "flight"),
          "status": ("status", "state")}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    cities = rng.sample(CITIES, 3 + difficulty // 2)
    routes = [(a, b) for a in cities for b in cities if a != b]
    routes = rng.sample(routes, min(len(routes), 3 + difficulty))
    flights: dict[str, Any] = {}
    fids = iter(ids(rng, ("FL", "F-", "QX"), 400, (100, 500)))
    for o, d in routes:
        for date in DATES[: 2 + difficulty // 2]:
            for _ in range(2 + rng.randrange(2)):
                flights[next(fids)] = {
                    f["origin"]: o, f["dest"]: d, f["date"]: date,
                    f["depart"]: f"{rng.randrange(6, 22):02d}:{pick(rng, ('00', '15', '30', '45'))}",
                    f["cabin"]: pick(rng, CABINS), f["price"]: float(rng.randrange(49, 900)),
                    f["seats"]: pick(rng, (0, 1, 2, 4, 9, 20)),
                }
    travelers = people(rng, 3 + difficulty)
    bookings: dict[str, Any] = {}
    flight_ids = list(flights)
    for bid in ids(rng, ("BK-", "R", "PNR"), 3 + 2 * difficulty, (100, 900)):
        fid = pick(rng, flight_ids)
        bookings[bid] = {f["traveler"]: pick(rng, travelers), f["flight"]: fid,
                         f["status"]: "confirmed" if rng.random() < 0.8 else "cancelled",
                         f["price"]: flights[fid][f["price"]]}
    return ({cols["flights"]: flights, cols["bookings"]: bookings},
            {"collections": cols, "fields": f, "today": "2025-07-20"}, {"routes": routes, "travelers": travelers})
