"""HR tools: employee search and look-up, and updates of title, salary, department, manager and status."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_builder import STR, P, S, find_tool, get_tool, make_tool
from agentkit.envs.families.hr.model import DEPTS, STATUSES
from agentkit.envs.spec import ToolSpec

OPS: dict[str, Any] = {}
"""HR needs no custom operation: the generic record tools cover it (an example of a minimal family)."""


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    ek = rng.choice(("employee_id", "id", "emp_id"))
    dept = S(type="string", enum=list(DEPTS))
    return {
        "find_employees": find_tool(
            rng, coll=cols["employees"], id_key=ek, label="employee", difficulty=difficulty,
            names=("find_employees", "search_staff", "directory_search"),
            filters=[(P("name", ("name", "query"), STR), f["name"], "contains"),
                     (P("dept", ("department", "dept", "team"), dept), f["dept"], "eq"),
                     (P("status", ("status",), S(type="string", enum=list(STATUSES))), f["status"], "eq")],
            order=(f["salary"],), sums=(f["salary"],),
        ),
        "get_employee": get_tool(rng, coll=cols["employees"], id_key=ek, label="employee",
                                 names=("get_employee", "employee_record", "lookup_employee")),
        "update_employee": make_tool(
            rng, impl="kit.update", names=("update_employee", "edit_employee", "modify_staff_record"), writes=True,
            descriptions=("Change an employee's salary, title, department, manager or status.",),
            params=[P("id", (ek,) if ek != "id" else ("id", "employee"), STR),
                    P("salary", ("salary", "annual_salary"), S(type="integer", minimum=0), False),
                    P("title", ("title", "job_title"), STR, False),
                    P("dept", ("department", "dept"), dept, False),
                    P("manager", ("manager_id", "reports_to"), STR, False),
                    P("status", ("status",), S(type="string", enum=list(STATUSES)), False)],
            config={"coll": cols["employees"], "id_key": ek, "label": "employee",
                    "set": {"salary": f["salary"], "title": f["title"], "dept": f["dept"],
                            "manager": f["manager"], "status": f["status"]}},
            nestable=("salary", "title", "dept", "manager", "status"),
        ),
    }
