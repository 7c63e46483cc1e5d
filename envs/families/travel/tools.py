"""Travel tools: flight search (filters, price cap), booking, booking search, cancellation."""

from __future__ import annotations

import random
from typing import Any

from agentkit.envs.families._kit_builder import STR, P, S, find_tool, get_tool, make_tool
from agentkit.envs.families._kit_records import close_reservation, take_unit
from agentkit.envs.families.travel.model import CABINS, CITIES, CITY_NAMES, DATES
from agentkit.envs.runtime import ToolContext
from agentkit.envs.spec import ToolSpec


def op_book(ctx: ToolContext, args: dict[str, Any]) -> Any:
    f = ctx.f
    fl = take_unit(ctx, ctx.c("flights"), args["flight"], f("seats"), "flight")
    rec = {f("traveler"): args["traveler"], f("flight"): args["flight"], f("status"): "confirmed",
           f("price"): fl[f("price")]}
    bid = ctx.ws.insert(ctx.c("bookings"), rec, ctx.config["prefix"])
    return {"ok": True, "booking_id": bid, **rec}


def op_cancel(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return close_reservation(ctx, ctx.c("bookings"), args["id"], "booking", "cancelled", active="confirmed",
                             unit_coll=ctx.c("flights"), unit_ref=ctx.f("flight"), unit_field=ctx.f("seats"))


OPS = {"book": op_book, "cancel": op_cancel}


def build_tools(rng: random.Random, difficulty: int, bindings: dict[str, Any]) -> dict[str, ToolSpec]:
    cols, f = bindings["collections"], bindings["fields"]
    fk, bk = rng.choice(("flight_id", "id")), rng.choice(("booking_id", "id", "pnr"))
    city = S(type="string", enum=list(CITIES))
    # The codes' cities, as a real API documents its enum. Why: the model is asked to book "from Berlin to Athens"
    # and, with no list in its context, had to recall ten pairs from training; it wrote "Athens is OSL" in most
    # booking tasks. Written "Berlin is BER", the list makes each code a copy of the token after "<city> is".
    airports = "Airport code: " + ", ".join(f"{CITY_NAMES[c]} is {c}" for c in CITIES) + "."
    return {
        "search_flights": find_tool(
            rng, coll=cols["flights"], id_key=fk, label="flight", difficulty=difficulty,
            sort=rng.choice((f["price"], f["depart"])), names=("search_flights", "find_flights", "flight_search"),
            filters=[(P("origin", ("origin", "from_airport", "departure_airport"), city, doc=airports), f["origin"], "eq"),
                     (P("dest", ("destination", "to_airport", "arrival_airport"), city, doc=airports), f["dest"], "eq"),
                     (P("date", ("date", "departure_date"), S(type="string", enum=list(DATES))), f["date"], "eq"),
                     (P("cabin", ("cabin", "fare_class"), S(type="string", enum=list(CABINS))), f["cabin"], "eq"),
                     (P("max_price", ("max_price", "price_cap"), S(type="number", minimum=0)), f["price"], "max")],
            order=(f["price"], f["depart"]),
            bounds=[(P("min_seats", ("min_seats", "seats_at_least"), S(type="integer", minimum=1),
                       doc="Only flights with at least this many free seats."), f["seats"], "min")],
        ),
        "get_flight": get_tool(rng, coll=cols["flights"], id_key=fk, label="flight",
                               names=("get_flight", "flight_details", "flight_info")),
        "book": make_tool(
            rng, impl="travel.book", names=("book_flight", "create_booking", "reserve_seat"), writes=True,
            descriptions=("Book one seat on a flight for a traveller.",),
            params=[P("traveler", ("traveler", "passenger_name", "guest"), STR),
                    P("flight", ("flight_id", "flight"), STR)],
            config={"prefix": rng.choice(("BK-N", "NEWBK", "RES-"))},
        ),
        "list_bookings": find_tool(
            rng, coll=cols["bookings"], id_key=bk, label="booking", difficulty=difficulty,
            names=("list_bookings", "search_bookings", "find_reservations"),
            filters=[(P("traveler", ("traveler", "passenger", "guest"), STR), f["traveler"], "contains"),
                     (P("status", ("status",), S(type="string", enum=["confirmed", "cancelled"])), f["status"], "eq")],
            sums=(f["price"],),
        ),
        "cancel": make_tool(
            rng, impl="travel.cancel", names=("cancel_booking", "cancel_reservation", "void_booking"), writes=True,
            descriptions=("Cancel a confirmed booking; the seat is released.",),
            params=[P("id", (bk,) if bk != "id" else ("id", "booking"), STR)],
        ),
    }
