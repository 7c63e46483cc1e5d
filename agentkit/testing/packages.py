"""Environment packages for tests, benchmarks and the demo: one good package (trip planning over SQLite, two tasks)
and a corpus of broken ones, each of which the gates must reject for its named reason (`BROKEN`)."""

from __future__ import annotations

import os
import sqlite3
import tempfile

from agentkit.envs.packages import Package, PackageTask

TRIP_SQL = """
CREATE TABLE flights (id TEXT PRIMARY KEY, origin TEXT, destination TEXT, day TEXT, price REAL, seats INTEGER);
CREATE TABLE bookings (id TEXT PRIMARY KEY, flight_id TEXT, passenger TEXT);
INSERT INTO flights VALUES ('FL101', 'Oslo', 'Rome', '2025-03-04', 189.0, 4);
INSERT INTO flights VALUES ('FL102', 'Oslo', 'Rome', '2025-03-04', 149.5, 2);
INSERT INTO flights VALUES ('FL103', 'Oslo', 'Rome', '2025-03-05', 99.0, 9);
INSERT INTO flights VALUES ('FL104', 'Oslo', 'Lisbon', '2025-03-04', 120.0, 1);
INSERT INTO flights VALUES ('FL105', 'Berlin', 'Rome', '2025-03-04', 140.0, 3);
INSERT INTO flights VALUES ('FL106', 'Oslo', 'Rome', '2025-03-04', 210.0, 0);
INSERT INTO bookings VALUES ('BK1', 'FL101', 'Jon Berg');
"""

TRIP_TOOLS = '''"""Trip planning: flights and bookings in a SQLite database."""

SCHEMAS = {
    "search_flights": {
        "description": "Flights from an origin city to a destination city on a day (YYYY-MM-DD), with price and seats.",
        "parameters": {"type": "object", "properties": {
            "origin": {"type": "string"}, "destination": {"type": "string"}, "day": {"type": "string"}},
            "required": ["origin", "destination", "day"], "additionalProperties": False},
    },
    "book_flight": {
        "description": "Book one seat on a flight for a passenger; returns the booking.",
        "parameters": {"type": "object", "properties": {
            "flight_id": {"type": "string"}, "passenger": {"type": "string"}},
            "required": ["flight_id", "passenger"], "additionalProperties": False},
    },
    "list_bookings": {
        "description": "Bookings of a passenger.",
        "parameters": {"type": "object", "properties": {"passenger": {"type": "string"}},
                       "required": ["passenger"], "additionalProperties": False},
    },
}


def search_flights(db, origin, destination, day):
    return db.execute("SELECT id, origin, destination, day, price, seats FROM flights "
                      "WHERE origin = ? AND destination = ? AND day = ? ORDER BY id",
                      (origin, destination, day)).fetchall()


def book_flight(db, flight_id, passenger):
    flight = db.execute("SELECT * FROM flights WHERE id = ?", (flight_id,)).fetchone()
    if flight is None:
        raise ValueError(f"no flight {flight_id}")
    if flight["seats"] < 1:
        raise ValueError(f"flight {flight_id} is full")
    n = db.execute("SELECT COUNT(*) AS n FROM bookings").fetchone()["n"] + 1
    booking = {"id": f"BK{n}", "flight_id": flight_id, "passenger": passenger}
    db.execute("INSERT INTO bookings VALUES (:id, :flight_id, :passenger)", booking)
    db.execute("UPDATE flights SET seats = seats - 1 WHERE id = ?", (flight_id,))
    return booking


def list_bookings(db, passenger):
    return db.execute("SELECT * FROM bookings WHERE passenger = ? ORDER BY id", (passenger,)).fetchall()
'''

BOOK_SOLUTION = '''def solve(tools):
    flights = tools.search_flights(origin="Oslo", destination="Rome", day="2025-03-04")
    open_flights = [f for f in flights if f["seats"] > 0]
    cheapest = min(open_flights, key=lambda f: f["price"])
    booking = tools.book_flight(flight_id=cheapest["id"], passenger="Ana Lima")
    return f"Booked {booking['id']} on {cheapest['id']} for {cheapest['price']}"
'''

BOOK_VERIFY = '''import re


def verify(initial, final, answer):
    open_flights = [f for f in initial["flights"]
                    if (f["origin"], f["destination"], f["day"]) == ("Oslo", "Rome", "2025-03-04") and f["seats"] > 0]
    cheapest = min(open_flights, key=lambda f: f["price"])
    new = [b for b in final["bookings"] if b not in initial["bookings"]]
    if len(new) != 1 or new[0]["flight_id"] != cheapest["id"] or new[0]["passenger"] != "Ana Lima":
        return False, f"expected exactly one new booking for Ana Lima on {cheapest['id']}, got {new}"
    seats = {f["id"]: f["seats"] for f in final["flights"]}
    if seats[cheapest["id"]] != cheapest["seats"] - 1:
        return False, "the seat count was not reduced by one"
    if any(seats[f["id"]] != f["seats"] for f in initial["flights"] if f["id"] != cheapest["id"]):
        return False, "another flight's seats changed"
    numbers = [float(x) for x in re.findall(r"\\d+(?:\\.\\d+)?", answer or "")]
    if cheapest["price"] not in numbers:
        return False, "the answer does not state the price"
    return True, "ok"
'''

COUNT_SOLUTION = '''def solve(tools):
    bookings = tools.list_bookings(passenger="Jon Berg")
    flights = tools.search_flights(origin="Oslo", destination="Rome", day="2025-03-04")
    prices = {f["id"]: f["price"] for f in flights}
    return f"Jon Berg paid {sum(prices.get(b['flight_id'], 0) for b in bookings)} in total"
'''

COUNT_VERIFY = '''import re


def verify(initial, final, answer):
    if final != initial:
        return False, "nothing should change"
    prices = {f["id"]: f["price"] for f in initial["flights"]}
    total = sum(prices[b["flight_id"]] for b in initial["bookings"] if b["passenger"] == "Jon Berg")
    numbers = [float(x) for x in re.findall(r"\\d+(?:\\.\\d+)?", answer or "")]
    return (total in numbers and len(numbers) <= 2), "the answer must state the total"
'''


def sqlite_bytes(sql: str) -> bytes:
    """A SQLite database file built from SQL text (our own fixture data; nothing model-written runs here)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.sqlite")
        con = sqlite3.connect(path)
        con.executescript(sql)
        con.commit()
        con.close()
        with open(path, "rb") as fh:
            return fh.read()


def trip_package(name: str = "oslo-trips") -> Package:
    return Package(
        name=name, description="Flights between European cities and their bookings.", category="trip planning",
        data_name="data.sqlite", data=sqlite_bytes(TRIP_SQL), tools_py=TRIP_TOOLS,
        tasks=[
            PackageTask("book-cheapest", "Book the cheapest flight with free seats from Oslo to Rome on 2025-03-04 "
                        "for Ana Lima, and tell me what it costs.", BOOK_SOLUTION, BOOK_VERIFY, difficulty=2),
            PackageTask("jon-total", "How much did Jon Berg pay in total for his flights from Oslo to Rome on "
                        "2025-03-04?", COUNT_SOLUTION, COUNT_VERIFY, difficulty=1),
        ],
    )  # fmt: skip


def _one(task_id: str, *, tools: str = TRIP_TOOLS, solution: str = BOOK_SOLUTION, verify: str = BOOK_VERIFY,
         instruction: str | None = None) -> Package:  # fmt: skip
    pkg = trip_package(f"broken-{task_id}")
    pkg.tools_py = tools
    base = pkg.tasks[0]
    pkg.tasks = [PackageTask(task_id, instruction or base.instruction, solution, verify, 2)]
    return pkg


def broken_packages() -> dict[str, tuple[str, Package]]:
    """name -> (the reason the gates must give, the package)."""
    vacuous = ('import re\n\n\ndef verify(initial, final, answer):\n'
               '    return "149.5" in (answer or ""), "the answer must state the price"\n')
    reads_db = ('import sqlite3\n\n\ndef solve(tools):\n    con = sqlite3.connect("data.sqlite")\n'
                '    row = con.execute("SELECT id, price FROM flights WHERE seats > 0 ORDER BY price").fetchone()\n'
                '    tools.book_flight(flight_id="FL102", passenger="Ana Lima")\n'
                '    return f"Booked FL102 for {row[1]}"\n')
    sneaky_db = ('def solve(tools):\n    book = tools.book_flight\n    db = book.__closure__[0].cell_contents\n'
                 '    return str(db)\n')
    nondeterministic = TRIP_TOOLS.replace('    n = db.execute("SELECT COUNT(*) AS n FROM bookings").fetchone()["n"] + 1',
                                          '    import random\n    n = random.randint(2, 10**9)')
    crashing = BOOK_VERIFY.replace("def verify(initial, final, answer):\n",
                                   "def verify(initial, final, answer):\n    initial = initial['flight']\n")
    hanging = TRIP_TOOLS.replace('def list_bookings(db, passenger):\n',
                                 'def list_bookings(db, passenger):\n    while True:\n        pass\n')
    escape = TRIP_TOOLS.replace('def book_flight(db, flight_id, passenger):\n',
                                'def book_flight(db, flight_id, passenger):\n'
                                '    import socket\n    socket.create_connection(("1.1.1.1", 53), timeout=2)\n')
    escape_dynamic = TRIP_TOOLS.replace('def book_flight(db, flight_id, passenger):\n',
                                        'def book_flight(db, flight_id, passenger):\n'
                                        '    open("/etc/passwd").read()\n')  # fmt: skip
    return {
        "vacuous verifier": ("vacuous", _one("vacuous", verify=vacuous)),
        "solution reads the database": ("direct_access", _one("reads-db", solution=reads_db)),
        "solution digs the database out of a tool": ("escape", _one("sneaky", solution=sneaky_db)),
        "nondeterministic tool": ("nondeterministic", _one("random-ids", tools=nondeterministic)),
        "leaking instruction": ("leak", _one("leaky", instruction="Book flight FL102 (the cheapest with free seats, "
                                             "from Oslo to Rome on 2025-03-04) for Ana Lima and tell me its price.")),
        "crashing verifier": ("verifier_error", _one("crash", verify=crashing)),
        "hanging tool": ("timeout", _one_hang(hanging)),
        "escape attempt": ("escape", _one("escape", tools=escape)),
        "escape attempt past the reader": ("escape", _one("escape2", tools=escape_dynamic)),
        "trivial verifier": ("trivial", _one("trivial", verify="def verify(initial, final, answer):\n    return True\n")),
    }  # fmt: skip


def _one_hang(tools: str) -> Package:
    pkg = _one("hang", tools=tools, solution=COUNT_SOLUTION, verify=COUNT_VERIFY)
    pkg.tasks[0].instruction = trip_package().tasks[1].instruction
    return pkg
