"""HR records: reporting lines, salaries, transfers between departments, promotions."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.hr import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("hr", model.build_state, tools.build_tools)

FAMILY = Family(
    name="hr", description="Employee records.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are an HR operations assistant with access to the staff directory tools.",
)
