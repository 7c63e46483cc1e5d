"""HR task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.family import GoalBuilder, money, pick


def _person(g: GoalBuilder, pred=None) -> dict:
    w, f = g.w, g.w.f
    E = w.c("employees")
    if "unique_names" not in w.data:  # names no other name contains (so a name search finds exactly one)
        names = [r[f("name")] for _, r in w.ws.records(E)]
        w.data["unique_names"] = {n for n in names if sum(n in m for m in names) == 1}
    unique = w.data["unique_names"]
    return g.pick_record(E, lambda rid, r: r[f("name")] in unique and (pred is None or pred(rid, r)), "employee")[1]


def _find(g: GoalBuilder, name: str, thought: str) -> tuple[str, dict]:
    hit = only(g.find_all("find_employees", thought, name=name), "employee")
    return hit[id_key(g.w, "find_employees")], hit


def _manager(g: GoalBuilder, name: str) -> tuple[str, dict]:
    f = g.w.f
    _, hit = _find(g, name, f"I look up {name} to see who they report to.")
    mid = hit[f("manager")]
    if mid is None:
        raise GenerationError("no manager")
    mgr = g.do("get_employee", f"{name} reports to {mid}; fetching that record.", id=mid)
    return mid, mgr


def manager_of(g: GoalBuilder) -> None:
    f = g.w.f
    p = _person(g, lambda rid, r: r[f("manager")] is not None)
    mid, mgr = _manager(g, p[f("name")])
    others = [r[f("name")] for _, r in g.w.ws.records(g.w.c("employees")) if r[f("dept")] == p[f("dept")]]
    g.hide(mid, mgr[f("name")])
    g.say(f"Who is {p[f('name')]}'s manager?")
    g.answer_names([mgr[f("name")]], f"{p[f('name')]} reports to {mgr[f('name')]}.",
                   [o for o in others if o != p[f("name")]], "The manager record gives the name.")


def raise_manager(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    p = _person(g, lambda rid, r: r[f("manager")] is not None)
    if (w.c("employees"), p[f("manager")]) in w.claimed:
        raise GenerationError("manager taken")
    g.claim(w.c("employees"), p[f("manager")])
    pct = pick(g.rng, (3, 4, 5, 8, 10))
    mid, mgr = _manager(g, p[f("name")])
    rate = g.param("manager merit raise", pct, f"{pct}%")
    new = g.calc(f"round({mgr[f('salary')]} * (100 + {pct}) / 100)", f"Salary {mgr[f('salary')]} plus {pct}%, rounded.")
    g.do("update_employee", f"The new salary is {new}.", id=mid, salary=new)
    g.expect(w.c("employees"), mid, f("salary"), new)
    g.hide(mid, mgr[f("name")], mgr[f("salary")], new)
    g.say(f"Give {p[f('name')]}'s manager a raise of {rate} (round to a whole amount).")


def top_earner(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    dept = pick(g.rng, w.data["depts"])
    items = g.find_first("find_employees", f"I list active {dept} staff, highest salary first.", dept=dept,
                         status="active", order_by="-" + f("salary"))
    staff = [it for it in items if it[f("title")] != "Director"]
    if len(staff) < 2:
        raise GenerationError("too few")
    top = g.first_of(staff, f("salary"))
    g.hide(top[f("name")], top[f("salary")])
    g.say(f"Excluding the department director, who is the highest-paid active employee in {dept}?")
    g.answer_names([top[f("name")]], f"{top[f('name')]} ({money(top[f('salary')])}).",
                   [s[f("name")] for s in staff[1:]],
                   f"Highest salary first; {top[f('name')]} is the first who is not the Director.")


def payroll(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    dept = pick(g.rng, w.data["depts"])
    total = g.sum_all("find_employees", f("salary"), f"I list the active {dept} staff with their salaries added up.",
                      dept=dept, status="active")
    g.hide(total)
    g.say(f"What is the combined annual salary of all active employees in {dept}?")
    g.answer_number(total, f"The active {dept} payroll is {money(total)}.", f"The result's sum is {money(total)}.",
                    tolerance=0.5)


def move_dept(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    p = _person(g, lambda rid, r: r[f("title")] != "Director" and r[f("status")] == "active")
    dest = pick(g.rng, [d for d in w.data["depts"] if d != p[f("dept")]])
    E = w.c("employees")
    head = next(rid for rid, r in w.ws.records(E) if r[f("dept")] == dest and r[f("title")] == "Director")
    boss = w.ws.get(E, head)
    assert boss is not None
    pid, _ = _find(g, p[f("name")], f"I need {p[f('name')]}'s employee id.")
    bid, _ = _find(g, boss[f("name")], f"Now the id of {boss[f('name')]}, who will be the new manager.")
    g.do("update_employee", f"Moving {pid} to {dest}, reporting to {bid}.", id=pid, dept=dest, manager=bid)
    g.expect(E, pid, f("dept"), dest)
    g.expect(E, pid, f("manager"), bid)
    g.hide(pid, bid)
    g.say(f"Move {p[f('name')]} to the {dest} department, reporting to {boss[f('name')]}.")


def promote(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    p = _person(g, lambda rid, r: not r[f("title")].startswith(("Senior", "Director")))
    bump = pick(g.rng, (2000, 3000, 5000, 7500))
    pid, hit = _find(g, p[f("name")], f"I look up {p[f('name')]}'s current title and salary.")
    raise_by = g.param("promotion salary increase", bump, str(bump))
    title = "Senior " + hit[f("title")]
    # through the calculator, like every sum: the new salary's digits are then a copy of its result
    salary = g.calc(f"{hit[f('salary')]} + {bump}", f"Salary {hit[f('salary')]} plus the {bump} raise.")
    g.do("update_employee", f"New title {title}, salary {salary}.", id=pid, title=title, salary=salary)
    g.expect(w.c("employees"), pid, f("title"), title)
    g.expect(w.c("employees"), pid, f("salary"), salary)
    g.hide(pid, hit[f("salary")], salary)
    g.say(f"Promote {p[f('name')]}: prefix their current title with 'Senior' and raise their salary by {raise_by}.")


ATOMS = [manager_of, raise_manager, top_earner, payroll, move_dept, promote]
