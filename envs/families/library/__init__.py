"""A lending library: catalogue look-ups, checkouts, returns."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.library import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("library", model.build_state, tools.build_tools)

FAMILY = Family(
    name="library", description="Books, members and loans.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are a librarian's assistant working through the library system's tools.",
)
