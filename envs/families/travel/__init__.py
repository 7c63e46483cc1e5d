"""Travel bookings: fare look-ups, booking the cheapest flight, rebooking, cancellations."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.travel import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("travel", model.build_state, tools.build_tools)

FAMILY = Family(
    name="travel", description="Flights and bookings.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are a travel-desk agent. Search before you book; never invent flight or booking ids.",
)
