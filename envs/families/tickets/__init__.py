"""Support tickets: routing to agents, load balancing, bulk status changes, queue counts."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.tickets import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("tickets", model.build_state, tools.build_tools)

FAMILY = Family(
    name="tickets", description="A support desk's tickets and agents.", ops=tools.OPS, build=build,
    atoms=tasks.ATOMS,
    persona="You are a support-desk lead assistant. Use the ticketing tools; do not change tickets you were not asked to.",
)
