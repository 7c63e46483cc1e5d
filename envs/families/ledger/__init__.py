"""Ledgers and transfers: find accounts, sum postings, move money, freeze accounts.

Folder layout (copy it to start a new family): `model.py` (state + vocabulary), `tools.py` (implementations and
tool builders), `tasks.py` (templates), and this file, which assembles them into `FAMILY`.
"""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.ledger import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("ledger", model.build_state, tools.build_tools)

FAMILY = Family(
    name="ledger",
    description="Bank accounts and postings: look-ups, spending totals, transfers, freezes.",
    ops=tools.OPS,
    build=build,
    atoms=tasks.ATOMS,
    persona="You are the back-office assistant of a retail bank. Use the tools; never guess ids or amounts.",
)
