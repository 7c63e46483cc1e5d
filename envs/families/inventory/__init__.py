"""Inventory and orders: catalogue look-ups, orders with nested line items, cancellations, restocking, prices."""

from __future__ import annotations

from agentkit.envs.families._kit_world import family_builder
from agentkit.envs.families.inventory import model, tasks, tools
from agentkit.envs.family import Family

build = family_builder("inventory", model.build_state, tools.build_tools)

FAMILY = Family(
    name="inventory", description="Products, stock and orders.", ops=tools.OPS, build=build, atoms=tasks.ATOMS,
    persona="You are the order-desk assistant of an online shop. Look things up with the tools before acting.",
)
