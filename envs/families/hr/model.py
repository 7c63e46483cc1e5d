"""HR data model: employees with department, title, salary, manager and employment status."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

DEPTS = ("engineering", "sales", "finance", "support", "marketing", "legal")
TITLES = ("Analyst", "Engineer", "Specialist", "Coordinator", "Associate")
STATUSES = ("active", "on_leave", "terminated")

COLLECTIONS = {"employees": ("employees", "staff", "people")}
FIELDS = {"name": ("name", "full_name"), "dept": ("department", "dept", "team"), "title": ("title", "job_title", "role"),
          "salary": ("salary", "annual_salary", "base_pay"), "manager": ("manager_id", "reports_to", "manager"),
          "status": ("status", "employment_status")}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    n = 8 + 4 * difficulty + rng.randrange(4)
    names = people(rng, n)
    eids = ids(rng, ("E-", "EMP", "HR-"), n, (1000, 9000))
    depts = rng.sample(DEPTS, 3 + difficulty // 2)
    heads = {d: eids[i] for i, d in enumerate(depts)}
    staff: dict[str, Any] = {}
    for i, (eid, name) in enumerate(zip(eids, names, strict=True)):
        dept = depts[i] if i < len(depts) else pick(rng, depts)
        head = i < len(depts)
        staff[eid] = {
            f["name"]: name, f["dept"]: dept, f["title"]: "Director" if head else pick(rng, TITLES),
            f["salary"]: (rng.randrange(120, 200) if head else rng.randrange(45, 118)) * 1000,
            f["manager"]: None if head else heads[dept],
            f["status"]: "active" if head or rng.random() < 0.85 else pick(rng, ("on_leave", "terminated")),
        }
    return ({cols["employees"]: staff}, {"collections": cols, "fields": f, "today": "2025-07-01"},
            {"depts": depts, "names": names})
