"""A realistic synthesis conversation for the ScriptedServer: the five steps, with the mistakes a model makes.

The scripted model builds the data with code in the sandbox (its first script has a wrong row and fails; it fixes
it), writes the tools, proposes a simple task whose verifier crashes on the first check, repairs it, then raises the
difficulty with a booking task that needs a new tool. The replies depend only on how far the conversation is, so
one script serves any number of concurrent categories (each names its own category in env.json).
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentkit.testing.packages import (
    BOOK_SOLUTION,
    BOOK_VERIFY,
    COUNT_SOLUTION,
    COUNT_VERIFY,
    TRIP_SQL,
    TRIP_TOOLS,
)
from agentkit.testing.scripted_server import Reply

_ROWS = [line for line in TRIP_SQL.strip().splitlines()]
_BAD_ROWS = [r.replace("'FL103', 'Oslo', 'Rome', '2025-03-05', 99.0, 9", "'FL103', 'Oslo', 'Rome', 99.0, 9") for r in _ROWS]


def _data_code(rows: list[str]) -> str:
    return ("import sqlite3, os\nos.makedirs('/work/pkg', exist_ok=True)\n"
            "if os.path.exists('/work/pkg/data.sqlite'):\n    os.remove('/work/pkg/data.sqlite')\n"
            "con = sqlite3.connect('/work/pkg/data.sqlite')\n"
            f"con.executescript('''{chr(10).join(rows)}''')\ncon.commit()\n"
            "print({t: con.execute(f'SELECT COUNT(*) FROM {t}').fetchone()[0] for t in ('flights', 'bookings')})\n")  # fmt: skip




def _without_booking(tools: str) -> str:
    """The first version of the tools: no book_flight yet (step 5 adds it)."""
    a, b = tools.index('    "book_flight": {'), tools.index('    "list_bookings": {')
    tools = tools[:a] + tools[b:]
    a, b = tools.index("def book_flight("), tools.index("def list_bookings(")
    return tools[:a] + tools[b:]


_FIRST_TOOLS = _without_booking(TRIP_TOOLS)
_BAD_COUNT_VERIFY = COUNT_VERIFY.replace('initial["bookings"] if', 'initial["booking"] if')


def _w(path: str, content: str) -> tuple[str, str]:
    return ("write_file", json.dumps({"path": path, "content": content}))


def _steps(category: str) -> list[Reply]:
    name = re.sub(r"[^a-z0-9]+", "-", category.casefold()).strip("-") or "env"
    env = {"name": name, "description": f"Flights and bookings for {category}.", "category": category,
           "data": "data.sqlite"}  # fmt: skip
    jon = {"instruction": "How much did Jon Berg pay in total for his flights from Oslo to Rome on 2025-03-04?",
           "difficulty": 1}  # fmt: skip
    book = {"instruction": "Book the cheapest flight with free seats from Oslo to Rome on 2025-03-04 for Ana Lima, "
            "and tell me what it costs.", "difficulty": 2}  # fmt: skip
    return [
        Reply(reasoning=f"Step 1: the data. For {category} I need flights with prices and seats, and bookings. "
              "I'll store them in SQLite in the package folder.", tool_calls=[("run_python", json.dumps({"code": _data_code(_BAD_ROWS)}))]),
        Reply(reasoning="One flight row lost its day, so the column count is wrong. Fix the row and rebuild.",
              tool_calls=[("run_python", json.dumps({"code": _data_code(_ROWS)}))]),
        Reply(reasoning="Six flights and one booking. Now the manifest.", tool_calls=[_w("env.json", json.dumps(env, indent=2))]),
        Reply(reasoning="Step 2: tools. A flight search and a passenger's bookings are enough for a first task.",
              tool_calls=[_w("tools.py", _FIRST_TOOLS)]),
        Reply(reasoning="Step 3: a simple task: Jon Berg's total. The solution looks up his bookings, then the prices.",
              tool_calls=[_w("tasks/jon-total/task.json", json.dumps(jon, indent=2))]),
        Reply(reasoning="The solution may only call tools.", tool_calls=[_w("tasks/jon-total/solution.py", COUNT_SOLUTION)]),
        Reply(reasoning="The verifier recomputes the total from the initial state and requires no change.",
              tool_calls=[_w("tasks/jon-total/verify.py", _BAD_COUNT_VERIFY)]),
        Reply(reasoning="Step 4: check it.", tool_calls=[("check_package", "{}")]),
        Reply(reasoning="The verifier crashed: the table is 'bookings', not 'booking'. Fix the verifier.",
              tool_calls=[_w("tasks/jon-total/verify.py", COUNT_VERIFY)]),
        Reply(reasoning="Check again.", tool_calls=[("check_package", "{}")]),
        Reply(reasoning="Kept. Step 5: harder. Booking the cheapest flight with free seats needs a choice under a "
              "condition and a state change; the tools cannot book yet, so add book_flight.",
              tool_calls=[_w("tools.py", TRIP_TOOLS)]),
        Reply(reasoning="The instruction must not name the flight or its price: the agent has to find them.",
              tool_calls=[_w("tasks/book-cheapest/task.json", json.dumps(book, indent=2))]),
        Reply(reasoning="Solution: search, filter on seats, take the cheapest, book it.",
              tool_calls=[_w("tasks/book-cheapest/solution.py", BOOK_SOLUTION)]),
        Reply(reasoning="Verifier: exactly one new booking on the cheapest open flight, its seat count down by one, "
              "nothing else changed, and the price in the answer.",
              tool_calls=[_w("tasks/book-cheapest/verify.py", BOOK_VERIFY)]),
        Reply(reasoning="Check both tasks.", tool_calls=[("check_package", "{}")]),
        Reply(reasoning="Both tasks are kept.", content="Kept 2 tasks: jon-total (difficulty 1) and book-cheapest "
              "(difficulty 2), over 3 tools."),
    ]  # fmt: skip


def synthesis_script(body: dict[str, Any]) -> Reply:
    """A ScriptedServer script: the next reply of the synthesis conversation the request belongs to."""
    messages = body.get("messages", [])
    user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    m = re.search(r"Category: (.+)", user)
    steps = _steps(m.group(1).strip() if m else "trip planning")
    done = sum(1 for msg in messages if msg.get("role") == "assistant")
    return steps[min(done, len(steps) - 1)]
