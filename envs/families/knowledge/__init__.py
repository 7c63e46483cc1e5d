"""Look-ups in a document corpus that need search: policy facts reported or recorded on support cases.

The corpus is searched by the environment's own BM25 (`agentkit.envs.runtime.BM25Search`); an agent episode can plug in
`agentkit.search` instead through `Episode(record, search=...)`.
"""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.knowledge import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("knowledge", model.build_state, tools.build_tools)

FAMILY = Family(
    name="knowledge", description="Product policies in a knowledge base and the cases that need them.",
    ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are a support agent. Facts about products are only in the knowledge base: search and read it.",
)
