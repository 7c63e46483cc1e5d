"""The tools API: schemas from type hints and docstrings, and every way a call can go wrong coming back as text."""

from __future__ import annotations

import asyncio
import time
from enum import Enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agentkit import Tool, ToolError, Toolset, tool
from agentkit.errors import ToolDefinitionError


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Order(BaseModel):
    sku: str
    qty: int = Field(ge=1)
    ship_to: Address


@tool
def create_orders(
    orders: list[Order],
    priority: Priority = Priority.LOW,
    mode: Literal["fast", "cheap"] = "cheap",
    note: str | None = None,
    tags: dict[str, int] | None = None,
    discount: float = 0.0,
    gift: bool = False,
) -> dict:
    """Create orders in one batch.

    Nothing ships before payment clears.

    Args:
        orders: the orders to create.
        priority: how urgent the batch is.
        mode (str): shipping mode;
            fast costs more.
    """
    return {"n": len(orders), "city": orders[0].ship_to.city, "priority": priority.value, "mode": mode, "gift": gift}


def test_schema_from_type_hints() -> None:
    p = create_orders.parameters
    assert create_orders.name == "create_orders"
    assert create_orders.description == "Create orders in one batch."
    assert p["required"] == ["orders"]
    props = p["properties"]
    assert props["orders"]["type"] == "array" and props["orders"]["items"] == {"$ref": "#/$defs/Order"}
    assert p["$defs"]["Order"]["properties"]["qty"] == {"type": "integer", "minimum": 1}
    assert p["$defs"]["Address"]["required"] == ["city"]
    assert p["$defs"]["Priority"]["enum"] == ["low", "high"]
    assert props["mode"]["enum"] == ["fast", "cheap"] and props["mode"]["default"] == "cheap"
    assert {"type": "null"} in props["note"]["anyOf"]
    assert props["tags"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["discount"]["type"] == "number" and props["gift"]["type"] == "boolean"
    assert props["orders"]["description"] == "the orders to create."
    assert props["mode"]["description"] == "shipping mode; fast costs more."
    assert "title" not in props["orders"] and p["additionalProperties"] is False


def test_docstring_styles_numpy_and_rest() -> None:
    @tool
    def numpy_style(a: int, b: str = "x") -> str:
        """Numpy style.

        Parameters
        ----------
        a : int
            The first
            value.
        b : str
            The second.

        Returns
        -------
        str
        """
        return b * a

    @tool
    def rest_style(a: int, b: str = "x") -> str:
        """reST style.

        :param a: The first value.
        :param str b: The second.
        :returns: text
        """
        return b * a

    for t in (numpy_style, rest_style):
        props = t.parameters["properties"]
        assert props["a"]["description"].startswith("The first") and props["b"]["description"] == "The second."
    assert numpy_style.parameters["properties"]["a"]["description"] == "The first value."


async def test_valid_call_validates_nested_models_and_enums() -> None:
    out = await create_orders.invoke(
        '{"orders": [{"sku": "A1", "qty": 2, "ship_to": {"city": "Oslo"}}], "priority": "high", "gift": true}'
    )
    assert not out.is_error
    assert out.content == '{"n": 1, "city": "Oslo", "priority": "high", "mode": "cheap", "gift": true}'


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"orders": [', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ("{}", "'orders' is required but missing"),
        ('{"orders": "many"}', "'orders': Input should be a valid list"),
        ('{"orders": [{"sku": "A", "qty": 0, "ship_to": {"city": "X"}}]}', "'orders.0.qty': Input should be greater than or equal to 1"),
        ('{"orders": [], "priority": "urgent"}', "'priority': Input should be 'low' or 'high'"),
        ('{"orders": [], "colour": "red"}', "'colour' is not a parameter of this tool"),
    ],
)
async def test_bad_arguments_become_error_text(arguments: str, expected: str) -> None:
    out = await create_orders.invoke(arguments)
    assert out.is_error
    assert expected in out.content
    assert "create_orders(orders: array[Order]" in out.content  # the model is shown the signature to retry


async def test_from_schema_validates_with_jsonschema() -> None:
    seen = {}

    async def set_stock(sku: str, qty: int) -> str:
        seen[sku] = qty
        return "ok"

    schema = {
        "type": "object",
        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]\\d+$"}, "qty": {"type": "integer", "minimum": 0}},
        "required": ["sku", "qty"],
        "additionalProperties": False,
    }
    t = Tool.from_schema("set_stock", "Set stock.", schema, set_stock)
    assert (await t.invoke({"sku": "A1", "qty": 3})).content == "ok" and seen == {"A1": 3}
    bad = await t.invoke('{"sku": "a1", "qty": -1, "x": 1}')
    assert bad.is_error
    assert "'sku': 'a1' does not match" in bad.content and "'qty': -1 is less than the minimum of 0" in bad.content
    assert "'x' was unexpected" in bad.content
    with pytest.raises(ToolDefinitionError, match="invalid JSON Schema"):
        Tool.from_schema("bad", "", {"type": "object", "properties": {"a": {"type": "nope"}}}, set_stock)
    with pytest.raises(ToolDefinitionError, match="tool name"):
        Tool.from_schema("has space", "", {}, set_stock)


async def test_unknown_tool_lists_the_known_ones() -> None:
    ts = Toolset([create_orders])
    out = await ts.call("create_order", "{}")
    assert out.is_error and out.content == "Unknown tool 'create_order'. Available tools: create_orders."


async def test_exceptions_timeouts_and_tool_errors() -> None:
    @tool(timeout=0.2)
    async def slow() -> str:
        """Sleeps."""
        await asyncio.sleep(5)
        return "never"

    @tool(timeout=0.2)
    def slow_sync() -> str:
        """Sleeps in a thread."""
        time.sleep(0.5)
        return "late"

    @tool
    def broken(x: int) -> int:
        """Divides."""
        return 1 // x

    @tool
    def refuses() -> str:
        """Refuses politely."""
        raise ToolError("account 7 is frozen; pick another account")

    t0 = time.monotonic()
    out = await slow.invoke("{}")
    assert out.is_error and "timed out after 0.2 s" in out.content and time.monotonic() - t0 < 1.0
    out = await slow_sync.invoke("{}")
    assert out.is_error and "timed out" in out.content
    out = await broken.invoke('{"x": 0}')
    assert out.is_error
    assert out.content.startswith("Tool 'broken' failed: ZeroDivisionError: integer division or modulo by zero (at ")
    assert "Traceback" not in out.content
    out = await refuses.invoke(None)
    assert out == type(out)("account 7 is frozen; pick another account", True)


async def test_results_are_rendered_and_capped_with_a_marker() -> None:
    @tool(max_output_chars=1000)
    def big() -> str:
        """Big."""
        return "".join(f"{i:05d}\n" for i in range(2000))

    @tool
    def model_result() -> Address:
        """A model."""
        return Address(city="Zürich")

    out = await big.invoke("{}")
    assert len(out.content) < 1100
    assert "[... truncated 11000 of 12000 characters ...]" in out.content
    assert out.content.startswith("00000\n") and out.content.endswith("01999\n")
    assert (await model_result.invoke("{}")).content == '{"city":"Zürich","postcode":null}'


def test_definition_errors_are_clear() -> None:
    def varargs(*items: int) -> int:
        return 0

    with pytest.raises(ToolDefinitionError, match=r"\*args/\*\*kwargs"):
        tool(varargs)
    with pytest.raises(ToolDefinitionError, match="two tools are named"):
        Toolset([create_orders, create_orders])
