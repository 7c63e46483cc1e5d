"""Travel references are written so that what the agent must write is a copy of its context: the search tool
documents every airport code ("Berlin is BER"), and a booking's first thought restates the instruction's route and
day word for word before naming the codes."""

from __future__ import annotations

import re

from agentkit.envs.families.travel.model import CITIES, CITY_NAMES
from agentkit.envs.generator import generate_records
from agentkit.envs.spec import TaskRecord
from agentkit.envs.trajectories import LOCAL_MODEL


def _records() -> list[TaskRecord]:
    return generate_records(60, 5150, ["travel"], (1, 2), wording="template")


def test_the_flight_search_documents_every_airport_code_in_its_origin_and_destination() -> None:
    records = _records()
    assert records
    for rec in records:
        documented = [p for t in rec.environment.tools for p in t.parameters["properties"].values()
                      if p.get("enum") == list(CITIES)]
        assert len(documented) == 2  # the flight search's origin and destination
        for p in documented:
            for code in CITIES:
                assert f"{CITY_NAMES[code]} is {code}" in p["description"], p["description"]


def test_a_booking_thought_restates_the_route_then_names_the_codes_it_searches() -> None:
    bookings = 0
    for rec in _records():
        for call in rec.solution.calls:
            m = re.match(r"Flying (from (\w+) to (\w+) on ([^:]+)): \2 is ([A-Z]{3}), \3 is ([A-Z]{3}), ", LOCAL_MODEL.thought(call))
            if not m:
                continue
            phrase, origin, dest, _, o, d = m.groups()
            assert phrase in rec.task.instruction, (phrase, rec.task.instruction)
            assert (CITY_NAMES[o], CITY_NAMES[d]) == (origin, dest)
            assert {o, d} <= set(call.arguments.values()), call.arguments
            bookings += 1
    assert bookings >= 3
