"""Support-ticket data model: tickets (customer, subject, priority, status, assignee, opened) and agents."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_world import ids, people, vocab
from agentkit.envs.family import pick

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "pending", "resolved", "closed")
TEAMS = ("billing", "technical", "onboarding", "returns")
SUBJECTS = ("Login fails", "Invoice is wrong", "App crashes on start", "Refund not received", "Cannot export data",
            "Password reset email missing", "Duplicate charge", "Slow dashboard", "API rate limit", "Broken item",
            "Shipping delay", "Account locked", "Missing feature", "SSO setup")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
             "Soylent", "Vandelay", "Wonka", "Tyrell", "Cyberdyne")

COLLECTIONS = {"tickets": ("tickets", "cases", "issues"), "agents": ("agents", "support_staff")}
FIELDS = {"customer": ("customer", "account", "company"), "subject": ("subject", "title", "summary"),
          "priority": ("priority", "severity"), "status": ("status", "state"),
          "assignee": ("assignee", "assigned_to", "owner_id"), "opened": ("opened", "created_on", "opened_at"),
          "name": ("name", "display_name"), "team": ("team", "queue")}


def build_state(rng: random.Random, difficulty: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cols, f = vocab(rng, COLLECTIONS), vocab(rng, FIELDS)
    names = people(rng, 4 + difficulty)
    agents = {aid: {f["name"]: n, f["team"]: pick(rng, TEAMS)}
              for aid, n in zip(ids(rng, ("AG-", "U", "S-"), len(names)), names, strict=True)}
    customers = rng.sample(COMPANIES, 3 + difficulty // 2)
    tickets: dict[str, Any] = {}
    agent_ids = list(agents)
    for tid in ids(rng, ("T-", "CASE-", "#"), 8 + 5 * difficulty + rng.randrange(4), (1000, 9000)):
        status = pick(rng, STATUSES)
        tickets[tid] = {
            f["customer"]: pick(rng, customers), f["subject"]: pick(rng, SUBJECTS),
            f["priority"]: pick(rng, PRIORITIES), f["status"]: status,
            f["assignee"]: pick(rng, agent_ids) if status != "open" or rng.random() < 0.6 else None,
            f["opened"]: f"2025-06-{rng.randrange(1, 29):02d}",
        }
    return ({cols["tickets"]: tickets, cols["agents"]: agents},
            {"collections": cols, "fields": f, "today": "2025-07-01"}, {"customers": customers})
