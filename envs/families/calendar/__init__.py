"""Calendars and scheduling: find meetings, book at the earliest common free slot, move and cancel meetings."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.calendar import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("calendar", model.build_state, tools.build_tools)

FAMILY = Family(
    name="calendar", description="Meetings, rooms and availability.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are a scheduling assistant. Check calendars with the tools before booking anything.",
)
