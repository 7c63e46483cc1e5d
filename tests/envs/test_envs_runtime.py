"""Episodes: agentkit tools over a private state, concurrency isolation, API-like argument errors, scoring, and the
search / python hooks."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from agentkit.envs.families import families
from agentkit.envs.family import World
from agentkit.envs.runtime import (
    PYTHON_IMPL,
    BM25Search,
    Episode,
    ReferencePython,
    Workspace,
    call_tool,
    check_arguments,
)
from agentkit.envs.spec import TaskRecord, canonical_json
from agentkit.tools import Tool


def _first(task_set: list[TaskRecord], family: str, writes: bool = True) -> TaskRecord:
    return next(r for r in task_set if r.task.family == family and (r.meta["writes"] > 0) == writes)


async def _play(ep: Episode, calls: list) -> None:  # type: ignore[type-arg]
    tools = {t.name: t for t in ep.tools()}
    for c in calls:
        out = await tools[c.tool].invoke(json.dumps(c.arguments))
        assert not out.is_error, out.content


async def test_reference_through_agentkit_tools_passes(task_set: list[TaskRecord]) -> None:
    for rec in task_set[:60]:
        python = ReferencePython() if any(t.impl == PYTHON_IMPL for t in rec.environment.tools) else None
        ep = Episode(rec, python=python)
        tools = ep.tools()
        assert all(isinstance(t, Tool) for t in tools)
        assert {t.name for t in tools} == {t.name for t in rec.environment.tools}
        await _play(ep, rec.solution.calls)
        verdict = ep.score(rec.solution.answer)
        assert verdict.passed, (rec.task.task_id, verdict.failures)
        assert len(ep.log) == len(rec.solution.calls)


async def test_concurrent_episodes_share_nothing(task_set: list[TaskRecord]) -> None:
    rec = _first(task_set, "ledger")
    before = canonical_json(rec.environment.state)
    solvers = [Episode(rec) for _ in range(8)]
    idlers = [Episode(rec) for _ in range(8)]
    await asyncio.gather(*(_play(ep, rec.solution.calls) for ep in solvers))
    assert all(ep.score(rec.solution.answer).passed for ep in solvers)
    assert not any(ep.score(rec.solution.answer).passed for ep in idlers)
    assert canonical_json(rec.environment.state) == before  # the record itself is never touched
    assert all(canonical_json(ep.state) == before for ep in idlers)
    # Two solvers end in the same state, reached independently.
    assert canonical_json(solvers[0].state) == canonical_json(solvers[1].state) != before


async def test_concurrent_tool_calls_in_one_episode(task_set: list[TaskRecord]) -> None:
    """The loop runs one turn's calls concurrently; read calls interleaved with writes stay consistent."""
    rec = _first(task_set, "inventory")
    ep = Episode(rec)
    tools = {t.name: t for t in ep.tools()}
    reads = [c for c in rec.solution.calls if not rec.environment.tool(c.tool).writes]  # type: ignore[union-attr]
    outs = await asyncio.gather(*(tools[c.tool].invoke(c.arguments) for c in reads * 5))
    assert not any(o.is_error for o in outs)
    assert ep.score(None).passed is False


def _tool(rec: TaskRecord, op_impl: str):  # type: ignore[no-untyped-def]
    return next(t for t in rec.environment.tools if t.impl == op_impl)


async def test_errors_are_actionable_like_a_real_api(task_set: list[TaskRecord]) -> None:
    rec = _first(task_set, "ledger")
    ep = Episode(rec)
    tools = {t.name: t for t in ep.tools()}
    get = _tool(rec, "kit.get")
    id_arg = next(iter(get.parameters["properties"]))
    # unknown id -> the implementation's own 404-style message
    out = await tools[get.name].invoke({id_arg: "NOPE-1"})
    assert out.is_error and "no account with id 'NOPE-1'" in out.content and "search" in out.content
    # wrong type -> validation names the argument and the expected type
    transfer = _tool(rec, "ledger.transfer")
    res = ep.call(transfer.name, {k: 5 for k in transfer.parameters["properties"]})
    assert res.is_error and "must be string" in res.content
    # unknown argument and malformed JSON
    res = ep.call(get.name, {id_arg: "x", "bogus": 1})
    assert res.is_error and "unknown argument 'bogus'" in res.content
    res = ep.call(get.name, "{not json")
    assert res.is_error and "not valid JSON" in res.content
    res = ep.call("no_such_tool", {})
    assert res.is_error and "Available tools" in res.content
    # business rule: insufficient funds, with the numbers the model needs
    accounts = next(iter(rec.environment.state.values()))
    (a, ra), (b, _) = list(accounts.items())[:2]
    names = {canon: actual for actual, canon in transfer.config["params"].items()}
    res = ep.call(transfer.name, {names["source"]: a, names["target"]: b, names["amount"]: 10 ** 9})
    assert res.is_error and ("insufficient funds" in res.content or "is frozen" in res.content
                             or "is closed" in res.content)
    assert all(entry.is_error for entry in ep.log)
    assert ep.ws.diff() == {"changed": {}, "created": {}, "deleted": {}}  # failed calls change nothing


def test_check_arguments_covers_the_schema_subset() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["a", "items"], "properties": {
        "a": {"type": "string", "minLength": 1}, "n": {"type": "integer", "minimum": 1, "maximum": 5},
        "kind": {"type": "string", "enum": ["x", "y"]}, "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
        "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["sku"],
                                                            "properties": {"sku": {"type": "string"}}}}}}
    assert check_arguments(schema, {"a": "ok", "items": [{"sku": "s"}]}) == []
    problems = check_arguments(schema, {"a": "", "n": 9, "kind": "z", "items": [{}], "zz": 1, "month": "June"})
    text = "\n".join(problems)
    for needle in ("'a' must not be empty", "'n' must be <= 5", "'kind' must be one of", "missing required argument "
                   "'items[0].sku'", "unknown argument 'zz'", "'month' must match"):
        assert needle in text
    assert check_arguments(schema, {"a": "ok"}) == ["missing required argument 'items'"]
    assert "must be integer" in check_arguments(schema, {"a": "ok", "items": [{"sku": "s"}], "n": True})[0]


def test_bm25_is_deterministic_and_ranks_the_named_product() -> None:
    corpus = [{"id": f"d{i}", "title": f"Widget {m} policy", "text": f"The Widget {m} has {i} months warranty."}
              for i, m in enumerate(["Alpha", "Beta", "Gamma", "Delta"])]
    s = BM25Search(corpus)
    assert s.search("Widget Gamma warranty", 3)[0][0] == "d2"
    assert s.search("Widget Gamma warranty", 3) == BM25Search(corpus).search("Widget Gamma warranty", 3)
    assert s.search("nothing matches", 3) == []


class RecordingSearch:
    """A `SearchBackend` stand-in for `agentkit.search`: delegates to BM25 and records the queries it served."""

    def __init__(self, corpus: list[dict[str, str]]) -> None:
        self.inner = BM25Search(corpus)
        self.queries: list[str] = []

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        self.queries.append(query)
        return self.inner.search(query, k)


async def test_search_backend_is_pluggable(task_set: list[TaskRecord]) -> None:
    rec = next(r for r in task_set if r.task.family == "knowledge")
    backend = RecordingSearch(rec.environment.corpus)
    ep = Episode(rec, search=backend)
    await _play(ep, rec.solution.calls)
    assert ep.score(rec.solution.answer).passed
    n_search = sum(1 for c in rec.solution.calls if rec.environment.tool(c.tool).impl == "kit.search_docs")  # type: ignore[union-attr]
    assert len(backend.queries) == n_search > 0


async def test_python_tool_needs_a_runner_and_says_how(task_set: list[TaskRecord]) -> None:
    rec = next(r for r in task_set if r.task.family == "dataset")
    ep = Episode(rec)
    py = _tool(rec, PYTHON_IMPL)
    tool = next(t for t in ep.tools() if t.name == py.name)
    out = await tool.invoke({"code": "print(1)"})
    assert out.is_error and "SandboxPython" in out.content
    with pytest.raises(RuntimeError, match="acall"):
        ep.call(py.name, {"code": "print(1)"})


async def test_tools_search_fts_index_plugs_in(task_set: list[TaskRecord]) -> None:
    """The real `agentkit.search` index (SQLite FTS5) behind the knowledge family's search tool."""
    from agentkit.envs.runtime import FTSSearch

    for rec in [r for r in task_set if r.task.family == "knowledge"][:5]:
        fts = FTSSearch(rec.environment.corpus)
        try:
            ep = Episode(rec, search=fts)
            search_tool = next(t.name for t in rec.environment.tools if t.impl == "kit.search_docs")
            read_tool = next(t.name for t in rec.environment.tools if t.impl == "kit.read_doc")
            for i, call in enumerate(rec.solution.calls):
                res = await ep.acall(call.tool, call.arguments)
                assert not res.is_error, res.content
                if call.tool == search_tool:  # the document the reference reads next is among the FTS hits
                    nxt = rec.solution.calls[i + 1]
                    assert nxt.tool == read_tool
                    assert next(iter(nxt.arguments.values())) in res.content
            assert ep.score(rec.solution.answer).passed
        finally:
            fts.close()


CHOOSING_FAMILIES = ("hr", "inventory", "ledger", "library", "tickets", "travel")


def test_search_tools_sort_and_bound_like_a_real_api(by_family: dict[str, list[TaskRecord]]) -> None:
    """The list tools that a task ranks or thresholds on take `order_by` and bound filters, so the choosing is an
    argument the agent copies, not a reading of every item: the first page starts at the true extreme of the whole
    collection, a bound is strict where its doc says so, and a field the tool cannot sort by is refused by name."""
    for fam in CHOOSING_FAMILIES:
        rec = by_family[fam][0]
        find = next(t for t in rec.environment.tools if t.impl == "kit.find" and t.config.get("order"))
        names = {canon: actual for actual, canon in find.config["params"].items()}
        items_key, coll = find.config["items_key"], find.config["coll"]
        ep = Episode(rec)
        values = [r[find.config["order"][0]] for _, r in ep.ws.records(coll)]
        fld = find.config["order"][0]
        up = ep.call(find.name, {names["order_by"]: fld})
        down = ep.call(find.name, {names["order_by"]: "-" + fld})
        assert not up.is_error and not down.is_error, (fam, up.content, down.content)
        first_up = [it[fld] for it in up.value[items_key]]
        first_down = [it[fld] for it in down.value[items_key]]
        assert first_up == sorted(first_up) and first_up[0] == min(values), fam
        assert first_down == sorted(first_down, reverse=True) and first_down[0] == max(values), fam
        bad = ep.call(find.name, {names["order_by"]: "colour"})
        assert bad.is_error and fld in bad.content, fam  # the error lists what it can sort by
        for canon, (bound_field, mode) in find.config["filters"].items():
            if mode not in ("lt", "min"):
                continue
            cut = sorted(r[bound_field] for _, r in ep.ws.records(coll))[len(values) // 2]
            res = ep.call(find.name, {names[canon]: cut})
            assert not res.is_error, (fam, res.content)
            got = [it[bound_field] for it in res.value[items_key]]
            assert got and all(v < cut if mode == "lt" else v >= cut for v in got), (fam, canon, cut, got)


def _listed(world: World, path: str, **filters: Any) -> list[str]:
    """The names a `list_dir` call with these (canonical) filters returns over all its pages; asserts that the total
    of its first page, where the paging style reports one, counts the filtered entries, not the directory."""
    tool, ws = world.ops["list_dir"], Workspace(world.env.state)
    arg = {canon: actual for actual, canon in tool.config["params"].items()}
    items: list[dict[str, Any]] = []
    total, more = None, dict[str, Any]()
    for _ in range(50):
        args = {arg[k]: v for k, v in {"path": path, **filters, **more}.items()}
        res = call_tool(world.env, ws, tool.name, args)
        assert not res.is_error, res.content
        total = res.value.get("total") if total is None else total
        items += res.value[tool.config["items_key"]]
        if res.value.get("page", 0) < res.value.get("pages", 0):
            more = {"page": res.value["page"] + 1}
        elif res.value.get("next_offset") is not None:
            more = {"offset": res.value["next_offset"]}
        elif res.value.get("next_cursor"):
            more = {"cursor": res.value["next_cursor"]}
        else:
            assert total in (None, len(items)), (path, filters, total, len(items))
            return sorted(e["name"] for e in items)
    raise AssertionError("paging did not end")


def _files_in(world: World, path: str) -> dict[str, tuple[int, str]]:
    """The raw state's files directly in `path`: name -> (size, owner)."""
    return {p.rsplit("/", 1)[1]: (r[world.f("size")], r[world.f("owner")])
            for p, r in world.ws.records(world.c("files")) if p.rsplit("/", 1)[0] == path}


def test_list_dir_filters_like_a_real_api(by_family: dict[str, list[TaskRecord]]) -> None:
    """`list_dir` filters by owner (any case), by size (strictly larger, in bytes) and by name suffix, combined with
    AND and before paging, so the choosing a clean-up or archiving task needs is an argument the agent copies; a
    filter returns files only, and a negative or non-integer size is refused by name."""
    for seed in range(10):
        world = families()["filesystem"].build(random.Random(seed), 1 + seed % 5)
        scratch = _files_in(world, "/tmp/scratch")
        owner = next(iter(scratch.values()))[1]
        assert _listed(world, "/tmp/scratch", owner=owner.upper()) == sorted(
            n for n, (_, o) in scratch.items() if o == owner)
        for svc in world.data["services"]:
            path = f"/var/log/{svc}"
            files = _files_in(world, path)
            cut = sorted(s for s, _ in files.values())[1]  # a size that exists: strictly larger leaves it out
            assert _listed(world, path, larger_than=cut) == sorted(n for n, (s, _) in files.items() if s > cut)
            assert _listed(world, path, suffix=".log") == sorted(n for n in files if n.endswith(".log"))
            top = max(files.values())[1]  # the owner of the largest file, which passes the size filter
            assert _listed(world, path, suffix=".log", larger_than=cut, owner=top) == sorted(
                n for n, (s, o) in files.items() if n.endswith(".log") and s > cut and o == top)
        assert _listed(world, "/var/log") == sorted(world.data["services"])  # sub-directories, which no filter keeps
        assert _listed(world, "/var/log", larger_than=0) == []
        assert _listed(world, "/var", suffix="log") == []  # not even /var/log, whose name has the suffix
        tool = world.ops["list_dir"]
        arg = {canon: actual for actual, canon in tool.config["params"].items()}
        for bad, why in ((-1, ">= 0"), ("12 KiB", "must be integer")):
            res = call_tool(world.env, Workspace(world.env.state), tool.name,
                            {arg["path"]: "/tmp/scratch", arg["larger_than"]: bad})
            assert res.is_error and why in res.content and arg["larger_than"] in res.content, res.content
            assert "unknown" not in res.content, res.content
    # The clean-up, archiving and log-volume references pass these filters, and still pass their verifiers.
    uses = [r for r in by_family["filesystem"] if any(
        spec.impl == "filesystem.list_dir" and {spec.config["params"].get(a) for a in c.arguments} & {"owner", "suffix"}
        for c in r.solution.calls if (spec := r.environment.tool(c.tool)) is not None)]
    assert uses
    for rec in uses:
        ep = Episode(rec)
        assert not any(ep.call(c.tool, c.arguments).is_error for c in rec.solution.calls)
        assert ep.score(rec.solution.answer).passed, rec.task.task_id
