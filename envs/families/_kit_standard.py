"""Ready-made tools with their operations, which families and `make_world` add as they are: search over a corpus of
documents, reading data files, the calculator of every environment, and read-only distractor tools.
"""

from __future__ import annotations

import ast
import csv
import io
import operator
import random
import re
from typing import Any

from agentkit.envs.errors import ToolCallError
from agentkit.envs.families._kit_builder import STR, P, S, make_tool
from agentkit.envs.runtime import ToolContext
from agentkit.envs.spec import ToolSpec

# -- corpus ----------------------------------------------------------------------------------------------------------


def op_search_docs(ctx: ToolContext, args: dict[str, Any]) -> Any:
    if ctx.search is None:
        raise ToolCallError("search is not available in this episode")
    k = min(int(args.get("k", 5)), 10)
    by_id = {d["id"]: d for d in ctx.env.corpus}
    hits = ctx.search.search(args["query"], k)
    return [{"doc_id": did, "title": by_id[did]["title"], "snippet": by_id[did]["text"][:90]} for did, _ in hits]


def op_read_doc(ctx: ToolContext, args: dict[str, Any]) -> Any:
    for d in ctx.env.corpus:
        if d["id"] == args["doc_id"]:
            return {"doc_id": d["id"], "title": d["title"], "text": d["text"]}
    raise ToolCallError(f"no document {args['doc_id']!r}; use the search tool to find document ids")


def search_tools(rng: random.Random) -> dict[str, ToolSpec]:
    return {
        "search_docs": make_tool(
            rng, impl="kit.search_docs", names=("search_docs", "search_kb", "kb_search", "search"),
            descriptions=("Full-text search over the knowledge base; returns document ids, titles and snippets.",),
            params=[P("query", ("query", "q", "text"), STR, doc="Keywords."),
                    P("k", ("k", "top_k", "max_results"), S(type="integer", minimum=1, maximum=10), False)],
        ),
        "read_doc": make_tool(
            rng, impl="kit.read_doc", names=("read_doc", "get_document", "open_doc", "fetch_article"),
            descriptions=("Read the full text of one document.",),
            params=[P("doc_id", ("doc_id", "id", "document_id"), STR)],
        ),
    }


# -- data files ------------------------------------------------------------------------------------------------------


def _file(ctx: ToolContext, name: str) -> str:
    if name not in ctx.env.files:
        raise ToolCallError(f"no file {name!r}; files: {sorted(ctx.env.files)}")
    return ctx.env.files[name]


def op_file_info(ctx: ToolContext, args: dict[str, Any]) -> Any:
    text = _file(ctx, args["path"])
    header = text.split("\n", 1)[0]
    rows = text.count("\n") - 1
    return {"path": args["path"], "columns": header.split(","), "rows": rows, "bytes": len(text.encode())}


def op_read_rows(ctx: ToolContext, args: dict[str, Any]) -> Any:
    text = _file(ctx, args["path"])
    rows = list(csv.reader(io.StringIO(text)))
    off, lim = args.get("offset", 0), args.get("limit", 10)
    return {"columns": rows[0], "rows": rows[1 + off: 1 + off + lim], "offset": off, "total_rows": len(rows) - 1}


def data_tools(rng: random.Random) -> dict[str, ToolSpec]:
    return {
        "file_info": make_tool(
            rng, impl="kit.file_info", names=("file_info", "describe_file", "stat_file"),
            descriptions=("Columns, row count and size of a data file.",),
            params=[P("path", ("path", "file", "filename"), STR)],
        ),
        "read_rows": make_tool(
            rng, impl="kit.read_rows", names=("read_rows", "head_file", "preview_rows"),
            descriptions=("Read at most 20 rows of a CSV file, for a preview; use python for whole-file analysis.",),
            params=[P("path", ("path", "file", "filename"), STR),
                    P("offset", ("offset", "skip"), S(type="integer", minimum=0), False),
                    P("limit", ("limit", "n"), S(type="integer", minimum=1, maximum=20), False)],
        ),
        "python": make_tool(
            rng, impl="kit.python", names=("python", "run_python", "execute_python"),
            descriptions=("Run Python 3 code in a sandbox whose working directory holds the data files; "
                          "print what you need to see. Variables persist between calls.",),
            params=[P("code", ("code",), STR, doc="Python source to run.")],
        ),
    }


# -- distractors -----------------------------------------------------------------------------------------------------


def op_today(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"date": ctx.env.bindings.get("today", "2025-06-02"), "timezone": "UTC"}


def op_status(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"status": "ok", "component": args.get("component", "all")}


def op_noop_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"entries": [], "note": "no entries for this account in the retention window"}


def distractor_tools(rng: random.Random, difficulty: int) -> list[ToolSpec]:
    """Read-only tools no task needs; their number grows with difficulty."""
    pool = [
        make_tool(rng, impl="kit.today", names=("get_current_date", "today", "current_date"),
                  descriptions=("Today's date.",), params=[]),
        make_tool(rng, impl="kit.status", names=("system_status", "health_check", "service_status"),
                  descriptions=("Health of the backend services.",),
                  params=[P("component", ("component", "service"), S(type="string", enum=["api", "db", "all"]),
                            False)]),
        make_tool(rng, impl="kit.noop_list", names=("audit_log", "list_audit_events", "activity_log"),
                  descriptions=("Recent audit events (read-only).",),
                  params=[P("limit", ("limit", "n"), S(type="integer", minimum=1, maximum=50), False)]),
    ]
    rng.shuffle(pool)
    return pool[: min(len(pool), max(0, difficulty - 2 + rng.randrange(2)))]


# -- arithmetic ------------------------------------------------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_EXPRESSION = 2000
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 1,234.5 -> 1234.5; the comma of round(x, 2) stays


def evaluate_arithmetic(expression: str) -> int | float:
    """The value of an expression of numbers, + - * /, unary minus, parentheses and round(x) / round(x, digits);
    nothing else is accepted (no names, other calls or powers), so an expression can neither run code nor make a
    huge number."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolCallError(f"the expression is {len(expression)} characters; at most {MAX_EXPRESSION}")
    try:
        tree = ast.parse(_THOUSANDS.sub("", expression).strip(), mode="eval")
    except SyntaxError:
        raise ToolCallError(f"not an arithmetic expression: {expression!r}; write e.g. 120.5 + 99.25 * 2") from None

    def value(node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round"
                and 1 <= len(node.args) <= 2 and not node.keywords):
            digits = value(node.args[1]) if len(node.args) == 2 else 0
            if not isinstance(digits, int) or not 0 <= digits <= 10:
                raise ToolCallError("round(x, digits) takes 0 to 10 digits")
            rounded = round(value(node.args[0]), digits)
            return int(rounded) if digits == 0 else rounded
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ToolCallError("division by zero")
            return _BINARY[type(node.op)](left, right)
        raise ToolCallError(f"only numbers, + - * /, parentheses and round() are allowed, got {ast.unparse(node)!r}")

    result = value(tree.body)
    if not abs(result) <= 10**15:  # also nan and inf
        raise ToolCallError("the result is too large (over 10^15)")
    if isinstance(result, float):
        result = round(result, 6)
        if result.is_integer() and "." not in expression and "/" not in expression:
            result = int(result)
    return result


def op_calculate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {"result": evaluate_arithmetic(str(args["expression"]))}


def calculator_tool(rng: random.Random) -> ToolSpec:
    """In every environment: sums and percentages are the agent's to compute, and a calculator is how an agent
    (the small local model above all) gets them exactly right instead of doing digits in its head."""
    return make_tool(
        rng, impl="kit.calculate", names=("calculate", "calculator"),
        descriptions=("Evaluate an arithmetic expression (numbers, + - * /, parentheses, round(x, digits)).",),
        params=[P("expression", ("expression",), STR, doc="For example: 120.5 + 99.25")],
    )
