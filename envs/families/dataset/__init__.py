"""Analysis of a data file too large to read whole: the agent must use the `python` tool (the sandbox).

During generation the reference code runs in-process (`agentkit.envs.runtime.ReferencePython`, our own code only) so no
container starts; an agent episode plugs the sandbox in with `Episode(record, python=SandboxPython(sandbox))`.
"""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.dataset import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("dataset", model.build_state, tools.build_tools)

FAMILY = Family(
    name="dataset", description="A sales CSV and a KPI table.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are a data analyst. The data file is too large to read row by row: analyse it with python.",
)
