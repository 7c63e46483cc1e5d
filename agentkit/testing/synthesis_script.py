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
    start = RESUME_AT if "Resumed:" in user else 0  # an interrupted category goes on after its kept task
    return steps[min(start + done, len(steps) - 1)]


RESUME_AT = 10
"""The step after the first kept task (jon-total): where a resumed conversation starts."""


# ---------------------------------------------------------------------------------------------------------------------
# Escalation: the synthesizer asked for a harder variant of a task the solver always solved

BOOK_FOR_JON = BOOK_SOLUTION.replace("Ana Lima", "Jon Berg")
BOOK_FOR_JON_VERIFY = BOOK_VERIFY.replace("Ana Lima", "Jon Berg")
BOOK_AND_TOTAL = '''def solve(tools):
    flights = tools.search_flights(origin="Oslo", destination="Rome", day="2025-03-04")
    cheapest = min([f for f in flights if f["seats"] > 0], key=lambda f: f["price"])
    tools.book_flight(flight_id=cheapest["id"], passenger="Jon Berg")
    bookings = tools.list_bookings(passenger="Jon Berg")
    prices = {f["id"]: f["price"] for f in flights}
    return f"Jon Berg has now paid {sum(prices.get(b['flight_id'], 0) for b in bookings)} in total"
'''
BOOK_AND_TOTAL_VERIFY = '''import re


def verify(initial, final, answer):
    open_flights = [f for f in initial["flights"]
                    if (f["origin"], f["destination"], f["day"]) == ("Oslo", "Rome", "2025-03-04") and f["seats"] > 0]
    cheapest = min(open_flights, key=lambda f: f["price"])
    new = [b for b in final["bookings"] if b not in initial["bookings"]]
    if len(new) != 1 or new[0]["flight_id"] != cheapest["id"] or new[0]["passenger"] != "Jon Berg":
        return False, f"expected exactly one new booking for Jon Berg on {cheapest['id']}, got {new}"
    seats = {f["id"]: f["seats"] for f in final["flights"]}
    if any(seats[f["id"]] != f["seats"] - (f["id"] == cheapest["id"]) for f in initial["flights"]):
        return False, "the seat counts are wrong"
    prices = {f["id"]: f["price"] for f in initial["flights"]}
    total = sum(prices[b["flight_id"]] for b in final["bookings"] if b["passenger"] == "Jon Berg")
    numbers = [float(x) for x in re.findall(r"\\d+(?:\\.\\d+)?", answer or "")]
    return total in numbers, "the answer must state Jon Berg's new total"
'''
ESCALATED_INSTRUCTIONS = {
    1: "Book the cheapest flight with free seats from Oslo to Rome on 2025-03-04 for Jon Berg, and tell me what it "
       "costs.",
    2: "Book the cheapest flight with free seats from Oslo to Rome on 2025-03-04 for Jon Berg, then tell me how much "
       "he has paid in total for his flights from Oslo to Rome that day, the new one included.",
}  # fmt: skip


def escalation_script(body: dict[str, Any]) -> Reply:
    """A ScriptedServer script for `escalate_category`: round 1 turns a look-up into a booking (a state change the
    solver still always gets right), round 2 chains the booking with the look-up."""
    messages = body.get("messages", [])
    user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    m = re.search(r"tasks/([a-z0-9-]+?-h(\d+))/", user)
    if m is None:
        return Reply(content="I was not asked for a harder variant.")
    new, rnd = m.group(1), min(int(m.group(2)), 2)
    solution, verify = (BOOK_FOR_JON, BOOK_FOR_JON_VERIFY) if rnd == 1 else (BOOK_AND_TOTAL, BOOK_AND_TOTAL_VERIFY)
    task = {"instruction": ESCALATED_INSTRUCTIONS[rnd], "difficulty": 1 + rnd}
    steps = [
        Reply(reasoning="The task only reads. Harder: a booking the agent has to choose under a condition"
              + (", then the look-up over the changed state." if rnd == 2 else "."),
              tool_calls=[_w(f"tasks/{new}/task.json", json.dumps(task, indent=2))]),
        Reply(reasoning="The solution, through the tools only.", tool_calls=[_w(f"tasks/{new}/solution.py", solution)]),
        Reply(reasoning="The verifier checks the exact change and the answer.",
              tool_calls=[_w(f"tasks/{new}/verify.py", verify)]),
        Reply(reasoning="Check it.", tool_calls=[("check_package", "{}")]),
        Reply(reasoning="Kept.", content=f"Wrote {new}, a harder variant; the gates keep it."),
    ]  # fmt: skip
    done = sum(1 for msg in messages if msg.get("role") == "assistant")
    return steps[min(done, len(steps) - 1)]
