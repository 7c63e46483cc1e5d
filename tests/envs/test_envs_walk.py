"""Reference thinking walks a listed result item by item before it picks from it (GoalBuilder.walk): the verdicts
in the walk must be the reference's own choices, or the model learns to copy a wrong verdict."""

from __future__ import annotations

import json
import re

from envs.family import GoalBuilder
from envs.spec import TaskRecord

WALK = re.compile(r"(?:^|\. )[A-Z][A-Za-z ,]*: (.+?)\.(?= [A-Z]|$)")


def _items(thought: str) -> list[str]:
    return [it for m in WALK.finditer(thought) for it in m.group(1).split("; ")]


def _name(item: str) -> str:
    """'Hana Lopez 165000 best' -> 'Hana Lopez' (the name, without the value and the verdict)."""
    words = item.split(" ")
    return " ".join(words[:-2] if words[-1] in ("yes", "no", "best") else words[:-1])


def test_walk_marks_matches_the_running_best_and_counts() -> None:
    rows = [{"id": "a", "v": 5, "ok": True}, {"id": "b", "v": 3, "ok": False}, {"id": "c", "v": 4, "ok": True},
            {"id": "d", "v": 1, "ok": True}, {"id": "e", "v": None, "ok": True}]
    assert GoalBuilder.walk(rows[:4], "id", "v", keep=lambda r: r["ok"]) == "a 5 yes; b 3 no; c 4 yes; d 1 yes."
    assert (GoalBuilder.walk(rows[:4], "id", "v", keep=lambda r: r["ok"], best="min")
            == "a 5 best; b 3 no; c 4 best; d 1 best.")
    assert GoalBuilder.walk(rows[:4], "id", "v", best="max") == "a 5 best; b 3; c 4; d 1."
    assert GoalBuilder.walk(rows, "id", count=True) == "1. a; 2. b; 3. c; 4. d; 5. e."
    assert GoalBuilder.walk(rows[4:], "id", "v") == "e null."  # values as the JSON result writes them


def test_every_walk_agrees_with_what_the_reference_then_does(task_set: list[TaskRecord]) -> None:
    walks = best = chosen = 0
    for rec in task_set:
        calls = rec.solution.calls
        answer = rec.solution.answer or ""
        for i, call in enumerate(calls):
            items = _items(call.thought or "")
            if not items:
                continue
            walks += 1
            later = " ".join(json.dumps(c.arguments) for c in calls[i:])
            for it in items:
                if it.endswith(" yes"):
                    chosen += 1
                    # a chosen item is acted on by name, or its value goes into the calculator
                    assert _name(it) in later or it.split(" ")[-2] in later, (rec.task.task_id, call.thought)
            bests = [it for it in items if it.endswith(" best")]
            if bests:
                best += 1
                assert _name(bests[-1]) in json.dumps(call.arguments) + (call.thought or "").split(bests[-1])[-1], (
                    rec.task.task_id, call.thought)
        items = _items(rec.solution.thought or "")
        bests = [it for it in items if it.endswith(" best")]
        if bests:
            best += 1
            assert _name(bests[-1]) in answer or bests[-1].split(" ")[-2] in answer, (rec.task.task_id, answer)
        counted = [it for it in items if re.match(r"\d+\. ", it)]
        if counted:
            assert str(len(counted)) in answer and counted[-1].startswith(f"{len(counted)}. "), rec.task.task_id
    assert walks > 20 and best > 10 and chosen > 10, (walks, best, chosen)
