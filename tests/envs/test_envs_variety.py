"""Scale of variety: distinct environments (tool signatures + state schema) and instruction templates."""

from __future__ import annotations

import random

from agentkit.envs.families import families
from agentkit.envs.spec import TaskRecord


def test_families_build_thousands_of_distinct_environments() -> None:
    seen: set[str] = set()
    per_family: dict[str, set[str]] = {}
    for name, fam in families().items():
        for seed in range(300):
            world = fam.build(random.Random(seed), 1 + seed % 5)
            h = world.env.signature_hash()
            seen.add(h)
            per_family.setdefault(name, set()).add(h)
    assert len(seen) >= 2000
    assert all(len(v) >= 150 for v in per_family.values()), {k: len(v) for k, v in per_family.items()}


def test_tool_names_and_signatures_vary(by_family: dict[str, list[TaskRecord]]) -> None:
    for name, recs in by_family.items():
        tool_names = {t.name for r in recs for t in r.environment.tools}
        arg_names = {a for r in recs for t in r.environment.tools for a in t.parameters.get("properties", {})}
        styles = {t.config.get("paging") for r in recs for t in r.environment.tools if "paging" in t.config}
        assert len(tool_names) >= 10 and len(arg_names) >= 8, name
        assert len(styles) >= 2, name


def test_instructions_vary(task_set: list[TaskRecord]) -> None:
    first_words = {" ".join(r.task.instruction.split()[:3]) for r in task_set}
    assert len(first_words) >= 40


def test_need_for_search_grows_with_difficulty(task_set: list[TaskRecord]) -> None:
    """From difficulty 4, some tasks of every-day families hide a number in a policy handbook that must be searched."""
    def searches(r: TaskRecord) -> bool:
        impls = {t.name: t.impl for t in r.environment.tools}
        return any(impls[c.tool] == "kit.search_docs" for c in r.solution.calls)

    plain = [r for r in task_set if r.task.family not in ("knowledge", "dataset")]
    assert not any(searches(r) for r in plain if r.task.difficulty <= 3)
    hard = [r for r in plain if r.task.difficulty >= 4 and searches(r)]
    assert len(hard) >= 8
    for r in hard:  # the looked-up policy document is named in no instruction, and its number is hidden
        doc_ids = {d["id"] for d in r.environment.corpus}
        read = [next(iter(c.arguments.values())) for c in r.solution.calls
                if next(t.impl for t in r.environment.tools if t.name == c.tool) == "kit.read_doc"]
        assert read and set(read) <= doc_ids and set(read) <= set(r.meta["hidden"])
        assert "policy handbook" in r.task.instruction
