"""Support-ticket task templates."""

from __future__ import annotations

from agentkit.envs.errors import GenerationError
from agentkit.envs.families._kit_world import id_key, only
from agentkit.envs.families.tickets.model import TEAMS
from agentkit.envs.family import GoalBuilder, pick


def _group(g: GoalBuilder, pred) -> list[str]:
    """Claim and return the ids of all tickets matching `pred` (none may be claimed already)."""
    w = g.w
    T = w.c("tickets")
    rids = [rid for rid, r in w.ws.records(T) if pred(r)]
    if not rids or any((T, rid) in w.claimed for rid in rids):
        raise GenerationError("group unavailable")
    g.claim(T, *rids)
    return rids


def _agent_id(g: GoalBuilder, name: str, thought: str) -> str:
    hit = only(g.find_all("list_agents", thought, name=name), "agent")
    return hit[id_key(g.w, "list_agents")]


def assign_oldest_urgent(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    customer = pick(g.rng, w.data["customers"])
    prio = pick(g.rng, ("urgent", "high"))
    _group(g, lambda r: r[f("customer")] == customer and r[f("status")] == "open" and r[f("priority")] == prio)
    items = g.find_first("list_tickets", f"I list {customer}'s open {prio} tickets, oldest first.",
                         customer=customer, status="open", priority=prio, order_by=f("opened"))
    oldest = g.first_of(items, f("opened"))
    aid = pick(g.rng, [a for a, _ in w.ws.records(w.c("agents"))])
    agent = w.ws.get(w.c("agents"), aid)
    assert agent is not None
    if sum(r[f("name")] == agent[f("name")] for _, r in w.ws.records(w.c("agents"))) > 1:
        raise GenerationError("two agents share the name")
    tid = oldest[id_key(w, "list_tickets")]
    if oldest[f("assignee")] == aid:
        raise GenerationError("already assigned")
    # `assign_named` takes the instruction's name as it is: with an id look-up between the listing and the assign,
    # the model mixed the two ids it had to write (4 of 14 passed, seed 7,770,043).
    g.do("assign_named", f"The first result is the oldest: {tid} (opened {oldest[f('opened')]}); assigning it to "
         f"{agent[f('name')]}.", id=tid, agent_name=agent[f("name")])
    g.expect(w.c("tickets"), tid, f("assignee"), aid)
    g.hide(tid, aid)
    g.say(f"Assign {customer}'s oldest open {prio}-priority ticket to {agent[f('name')]}.")


def least_loaded(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    team = pick(g.rng, TEAMS)
    agents = [(aid, a) for aid, a in w.ws.records(w.c("agents")) if a[f("team")] == team]
    if len(agents) < 2:
        raise GenerationError("small team")
    customer = pick(g.rng, w.data["customers"])
    _group(g, lambda r: r[f("customer")] == customer and r[f("status")] == "open" and r[f("assignee")] is None)
    unassigned = g.find_all("list_tickets", f"I look for {customer}'s open tickets without an assignee.",
                            customer=customer, status="open")
    unassigned = [t for t in unassigned if t[f("assignee")] is None]
    if len(unassigned) != 1:
        raise GenerationError("need one")
    roster = g.find_all("list_agents", f"I list the {team} team.", team=team)
    key = id_key(w, "list_agents")
    loads = []
    for a in roster:
        n = len(g.find_all("list_tickets", f"Counting open tickets of {a[f('name')]}.", assignee=a[key],
                           status="open"))
        loads.append((n, a[key]))
    loads.sort()
    if loads[0][0] == loads[1][0]:
        raise GenerationError("tie")
    tid = unassigned[0][id_key(w, "list_tickets")]
    g.do("assign", f"{loads[0][1]} has the fewest open tickets ({loads[0][0]}).", id=tid, agent=loads[0][1])
    g.expect(w.c("tickets"), tid, f("assignee"), loads[0][1])
    g.hide(tid, loads[0][1])
    g.say(f"{customer} has one open ticket that nobody is assigned to. Give it to the member of the {team} team "
          "who currently has the fewest open tickets.")


def bulk_status(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    customer = pick(g.rng, w.data["customers"])
    src, dst, field, verb = pick(g.rng, (("resolved", "closed", "status", "Close"),
                                         ("normal", "high", "priority", "Escalate to high priority")))
    _group(g, lambda r: r[f("customer")] == customer and r[f(field)] == src
           and (field == "status" or r[f("status")] == "open"))
    filt = {"status": src} if field == "status" else {"status": "open", "priority": src}
    items = g.find_all("list_tickets", f"I list {customer}'s matching tickets.", customer=customer, **filt)
    key = id_key(w, "list_tickets")
    for it in items:
        g.do("update_ticket", f"Updating {it[key]}.", id=it[key], **{field: dst})
        g.expect(w.c("tickets"), it[key], f(field), dst)
        g.hide(it[key])
    what = "resolved tickets" if field == "status" else "open normal-priority tickets"
    g.say(f"{verb} all of {customer}'s {what}.")


def open_count(g: GoalBuilder) -> None:
    w, f = g.w, g.w.f
    aid0, agent = pick(g.rng, list(w.ws.records(w.c("agents"))))
    aid = _agent_id(g, agent[f("name")], f"I look up {agent[f('name')]}'s agent id.")
    n = g.count_all("list_tickets", f"I count open tickets assigned to {aid}.", assignee=aid, status="open")
    if n == 0:
        raise GenerationError("zero is too easy to guess")
    g.hide(aid)
    g.say(f"How many open tickets are currently assigned to {agent[f('name')]}?")
    g.answer_number(n, f"{agent[f('name')]} has {n} open ticket(s).", f"The result's total is {n}.", tolerance=0)


ATOMS = [assign_oldest_urgent, least_loaded, bulk_status, open_count]
