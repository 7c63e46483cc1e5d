"""Assembling a world (a family's tools plus the calculator, distractors and, at higher difficulty, a policy
handbook), the shared vocabulary of names, ids and months, and helpers for task templates.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_standard import calculator_tool, distractor_tools, search_tools
from agentkit.envs.family import World, pick
from agentkit.envs.spec import Environment, ToolSpec

# --------------------------------------------------------------------------------------------------------------------
# Assembling a world


HANDBOOK_MIN_DIFFICULTY = 4
HANDBOOK_TOPICS = (
    ("late payment fee", "12.50 EUR"), ("overtime multiplier", "1.5"), ("maximum meeting length", "90 minutes"),
    ("log retention period", "30 days"), ("travel per diem", "65.00 EUR"), ("return window", "30 days"),
    ("expense approval limit", "500.00 EUR"), ("password rotation period", "90 days"),
)


def handbook(rng: random.Random) -> list[dict[str, str]]:
    """A few distractor policy documents; templates add the ones a task needs (`GoalBuilder.param`)."""
    return [policy_doc(f"POL-{100 + i}", topic, value)
            for i, (topic, value) in enumerate(rng.sample(HANDBOOK_TOPICS, 3 + rng.randrange(2)))]


def policy_doc(doc_id: str, topic: str, value: str) -> dict[str, str]:
    return {"id": doc_id, "title": f"{topic.capitalize()} policy",
            "text": f"Effective 1 January 2025, the {topic} is {value}. Exceptions need written approval."}


def make_world(
    family: str,
    rng: random.Random,
    difficulty: int,
    *,
    state: dict[str, dict[str, dict[str, Any]]],
    bindings: dict[str, Any],
    ops: dict[str, ToolSpec],
    data: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    corpus: list[dict[str, str]] | None = None,
) -> World:
    """Environment = the family's tools (shuffled) + distractor tools; tool names must be unique.

    From difficulty 4, half of the environments without a corpus of their own get a policy handbook (a small
    corpus plus the search tools): templates then move some of their numbers into it (`GoalBuilder.param`), so the
    agent has to search before it can act."""
    data = dict(data or {})
    corpus = list(corpus or [])
    if difficulty >= HANDBOOK_MIN_DIFFICULTY and not corpus and not files and rng.random() < 0.5:
        ops = {**ops, **search_tools(rng)}
        corpus = handbook(rng)
        data["handbook"] = True
    ops = {**ops, "calculate": calculator_tool(rng)}
    tools = list(ops.values()) + distractor_tools(rng, difficulty)
    rng.shuffle(tools)
    seen: set[str] = set()
    for t in tools:
        if t.name in seen:
            raise GenerationError(f"{family}: two tools named {t.name!r}; give their name lists distinct variants")
        seen.add(t.name)
    env = Environment(family, tools, state, bindings, files or {}, corpus)
    return World(env, ops, rng, difficulty, data)


def vocab(rng: random.Random, options: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Pick one actual name per canonical name (field or collection)."""
    return {canon: pick(rng, names) for canon, names in options.items()}


def size_for(difficulty: int, rng: random.Random, base: int = 6, per: int = 5) -> int:
    """Number of records: grows with difficulty (distractor records)."""
    return base + per * difficulty + rng.randrange(per)


# --------------------------------------------------------------------------------------------------------------------
# Shared vocabulary

FIRST_NAMES = (
    "Maria", "James", "Aiko", "Omar", "Lena", "Ravi", "Sofia", "Chen", "Fatima", "Lucas", "Ingrid", "Kwame", "Elena",
    "Diego", "Priya", "Tomas", "Hana", "Noah", "Amara", "Felix", "Yuki", "Zara", "Mateo", "Nadia", "Oskar", "Leila",
    "Jonas", "Ines", "Arjun", "Mila",
)
LAST_NAMES = (
    "Lopez", "Okafor", "Tanaka", "Haddad", "Fischer", "Patel", "Rossi", "Wang", "Nowak", "Silva", "Berg", "Mensah",
    "Petrova", "Alvarez", "Sharma", "Novak", "Kim", "Dubois", "Eze", "Larsen", "Sato", "Khan", "Moreau", "Ivanova",
    "Lindqvist", "Costa", "Weber", "Adeyemi", "Kowalski", "Murphy",
)
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")
MONTH_NAMES = {
    "2025-01": "January 2025", "2025-02": "February 2025", "2025-03": "March 2025", "2025-04": "April 2025",
    "2025-05": "May 2025", "2025-06": "June 2025",
}


def people(rng: random.Random, n: int) -> list[str]:
    """n distinct full names; some share a first or last name (near-miss distractors)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        name = f"{pick(rng, FIRST_NAMES)} {pick(rng, LAST_NAMES)}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def ids(rng: random.Random, prefixes: tuple[str, ...], n: int, start_range: tuple[int, int] = (100, 900)) -> list[str]:
    """n ids with a random prefix style and start: 'ACC-104', 'AC105', ..."""
    prefix = pick(rng, prefixes)
    start = rng.randrange(*start_range)
    return [f"{prefix}{start + i}" for i in range(n)]


# --------------------------------------------------------------------------------------------------------------------
# Template helpers


def id_key(world: World, op: str) -> str:
    return str(world.ops[op].config["id_key"])


def only(items: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The single match a template expects; more or fewer means the world is ambiguous: try another."""
    if len(items) != 1:
        raise GenerationError(f"expected exactly one {what}, found {len(items)}")
    return items[0]


def family_builder(name: str, build_state: Any, build_tools: Any) -> Any:
    """The usual `Family.build`: state from the data model, tools from the tool builder, assembled by `make_world`.
    A family's `data` may carry "files" ({name: text}) and "corpus" (documents) for the environment."""

    def build(rng: random.Random, difficulty: int) -> World:
        state, bindings, data = build_state(rng, difficulty)
        ops = build_tools(rng, difficulty, bindings)
        return make_world(name, rng, difficulty, state=state, bindings=bindings, ops=ops, data=data,
                          files=data.get("files"), corpus=data.get("corpus"))

    return build
