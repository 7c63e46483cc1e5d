"""A virtual file system: configs to read and edit, logs to archive, scratch files to clean up."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.filesystem import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("filesystem", model.build_state, tools.build_tools)

FAMILY = Family(
    name="filesystem", description="Files and directories of a server.", ops=tools.OPS, build=build,
    atoms=tasks.ATOMS,
    persona="You are a sysadmin assistant working on a server's file system through tools.",
)
