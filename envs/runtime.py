"""Running tools over a task's state: the fast `execute` path used by the generator, and `Episode` for agents.

Both share one engine: a copy-on-write `Workspace` over a state, argument validation with model-actionable messages,
and implementations resolved by name from the family registry. The generator executes each task's reference solution
several times (full, and once per dropped step), so the engine never deep-copies the state: reads go to the base,
writes copy the one record they touch. An `Episode` additionally deep-copies its state once, so concurrent episodes
of the same task share nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentkit.envs.errors import SpecError, ToolCallError
from agentkit.envs.fts import FTSSearch  # noqa: E402,F401 - its home before it moved; imported from here
from agentkit.envs.spec import (
    Call,
    Diff,
    Environment,
    Record,
    State,
    TaskRecord,
    ToolSpec,
    Verdict,
    empty_diff,
)

PACKAGE_IMPL = "package.tool"
"""An environment package's tool: the call goes into the episode's sandbox session (`agentkit.envs.packages`)."""
PYTHON_IMPL = "kit.python"
"""The one implementation that needs a code runner; the runtime hands the code to the episode's `PythonRunner`."""


# --------------------------------------------------------------------------------------------------------------------
# State


def copy_json(value: Any) -> Any:
    """Deep copy of JSON data, several times faster than `copy.deepcopy`."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


class Workspace:
    """A copy-on-write view of a state. Implementations read with `get`/`records` and write with
    `insert`/`update`/`delete`; the records they receive must never be mutated in place."""

    __slots__ = ("base", "writes")

    def __init__(self, base: State) -> None:
        self.base = base
        self.writes: dict[str, dict[str, Record | None]] = {}

    def get(self, coll: str, rid: str) -> Record | None:
        w = self.writes.get(coll)
        if w is not None and rid in w:
            return w[rid]
        return self.base.get(coll, {}).get(rid)

    def records(self, coll: str) -> Iterable[tuple[str, Record]]:
        """(id, record) in a stable order: the base's order, then records created in this workspace."""
        w = self.writes.get(coll)
        base = self.base.get(coll, {})
        if not w:
            return base.items()  # the common case: a view, no copying
        merged = [(rid, w[rid] if rid in w else rec) for rid, rec in base.items()]
        merged += [(rid, cur) for rid, cur in w.items() if rid not in base]
        return [(rid, rec) for rid, rec in merged if rec is not None]

    def insert(self, coll: str, record: Record, prefix: str) -> str:
        """Add a record under the next free id `prefix<n>`; returns the id."""
        n = len(self.base.get(coll, {})) + len(self.writes.get(coll, {})) + 1
        while self.get(coll, f"{prefix}{n}") is not None or f"{prefix}{n}" in self.base.get(coll, {}):
            n += 1
        rid = f"{prefix}{n}"
        self.writes.setdefault(coll, {})[rid] = dict(record)
        return rid

    def update(self, coll: str, rid: str, changes: dict[str, Any]) -> Record:
        rec = self.get(coll, rid)
        if rec is None:
            raise ToolCallError(f"no record {rid!r} in {coll}")
        new = {**rec, **changes}
        self.writes.setdefault(coll, {})[rid] = new
        return new

    def delete(self, coll: str, rid: str) -> None:
        if self.get(coll, rid) is None:
            raise ToolCallError(f"no record {rid!r} in {coll}")
        self.writes.setdefault(coll, {})[rid] = None

    def diff(self) -> Diff:
        """Changed fields, created records and deleted ids relative to the base (no-op writes vanish)."""
        out = empty_diff()
        for coll, w in self.writes.items():
            base = self.base.get(coll, {})
            for rid, rec in w.items():
                old = base.get(rid)
                if old is None:
                    if rec is not None:
                        out["created"].setdefault(coll, []).append(rec)
                elif rec is None:
                    out["deleted"].setdefault(coll, []).append(rid)
                else:
                    changed = {k: v for k, v in rec.items() if k not in old or old[k] != v}
                    if changed:
                        out["changed"].setdefault(coll, {})[rid] = changed
        return out

    def materialise(self) -> State:
        return {coll: {rid: rec for rid, rec in self.records(coll)} for coll in self.base}


# --------------------------------------------------------------------------------------------------------------------
# Argument validation (the JSON Schema subset the families emit), with messages a model can act on

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_arguments(schema: dict[str, Any], args: dict[str, Any], path: str = "") -> list[str]:
    """Problems with `args` against an object schema: missing/unknown arguments, wrong types, enums, ranges."""
    problems: list[str] = []
    props: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in args:
            problems.append(f"missing required argument '{path}{name}'")
    for name, value in args.items():
        sub = props.get(name)
        if sub is None:
            if schema.get("additionalProperties", True) is False:
                known = ", ".join(props) or "none"
                problems.append(f"unknown argument '{path}{name}' (known: {known})")
            continue
        problems += _check_value(sub, value, f"{path}{name}")
    return problems


def _check_value(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    typ = schema.get("type")
    if typ is not None and not _TYPES[typ](value):
        return [f"'{where}' must be {typ}, got {type(value).__name__} {json.dumps(value)[:40]}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"'{where}' must be one of {json.dumps(schema['enum'])}, got {json.dumps(value)[:40]}"]
    if typ in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return [f"'{where}' must be >= {schema['minimum']}, got {value}"]
        if "maximum" in schema and value > schema["maximum"]:
            return [f"'{where}' must be <= {schema['maximum']}, got {value}"]
    if typ == "string" and schema.get("minLength", 0) > len(value):
        return [f"'{where}' must not be empty"]
    if typ == "string" and "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"'{where}' must match {schema['pattern']}, got {json.dumps(value)[:40]}"]
    if typ == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return [f"'{where}' has {len(value)} items; at most {schema['maxItems']} allowed"]
        if schema.get("minItems", 0) > len(value):
            return [f"'{where}' needs at least {schema['minItems']} item(s)"]
        items = schema.get("items")
        if items:
            return [p for i, v in enumerate(value) for p in _check_value(items, v, f"{where}[{i}]")]
    if typ == "object" and "properties" in schema:
        return check_arguments(schema, value, f"{where}.")
    return []


# --------------------------------------------------------------------------------------------------------------------
# Capabilities: search over the corpus and a Python runner for data files


class SearchBackend(Protocol):
    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to k (doc id, score) pairs, best first, deterministic for equal input."""
        ...


_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25Search:
    """Pure-Python BM25 over a small corpus: deterministic (ties broken by doc id) and dependency-free, so the
    generator can prove a search task solvable without any index service. `agentkit.search` plugs in through
    `SearchBackend` for agents that should use the real FTS5 index."""

    def __init__(self, corpus: list[dict[str, str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs: list[tuple[str, dict[str, int], int]] = []
        df: dict[str, int] = {}
        for doc in corpus:
            toks = tokens(f"{doc.get('title', '')} {doc.get('text', '')}")
            tf: dict[str, int] = {}
            for t in toks:
                tf[t] = tf.get(t, 0) + 1
            for t in tf:
                df[t] = df.get(t, 0) + 1
            self.docs.append((doc["id"], tf, len(toks)))
        n = max(len(self.docs), 1)
        self.avgdl = sum(d[2] for d in self.docs) / n
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        q = set(tokens(query))
        scored = []
        for doc_id, tf, dl in self.docs:
            s = 0.0
            for t in q:
                f = tf.get(t)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * dl / self.avgdl))
            if s > 0:
                scored.append((doc_id, round(s, 6)))
        scored.sort(key=lambda x: (-x[1], x[0]))
        return scored[:k]


class PythonRunner(Protocol):
    async def run(self, code: str, files: dict[str, str]) -> str:
        """Run `code` with `files` readable by name in its working directory; return stdout (and errors)."""
        ...


class ReferencePython:
    """Runs OUR generated reference code in-process, with `open` reading the environment's files from memory.

    This is not a sandbox: it exists so the generator can prove that the reference code derives the gold value
    without starting a container. Code from a model must go through `SandboxPython`.
    """

    def run_sync(self, code: str, files: dict[str, str]) -> str:
        # Reference code is a pure function of (code, files): memoised, since the generator runs each reference
        # several times (full, each dropped step, determinism re-run).
        return _run_reference(code, tuple(sorted(files.items())))

    async def run(self, code: str, files: dict[str, str]) -> str:
        return self.run_sync(code, files)


@functools.lru_cache(maxsize=512)
def _run_reference(code: str, file_items: tuple[tuple[str, str], ...]) -> str:
    files = dict(file_items)

    def _open(name: str, mode: str = "r", *args: Any, **kwargs: Any) -> io.StringIO:
        if "r" not in mode or name not in files:
            raise FileNotFoundError(f"{name!r}: the files here are {sorted(files)}")
        return io.StringIO(files[name])

    out = io.StringIO()
    env: dict[str, Any] = {"__builtins__": {**vars(builtins), "open": _open}, "__name__": "__main__"}
    with contextlib.redirect_stdout(out):
        try:
            exec(compile(code, "<reference>", "exec"), env)  # noqa: S102 - generator-authored code only
        except Exception as exc:  # noqa: BLE001 - reported like a REPL would
            return out.getvalue() + f"{type(exc).__name__}: {exc}\n"
    return out.getvalue()


class SandboxPython:
    """A `PythonRunner` over a `agentkit.sandbox.Sandbox` (duck-typed: `run_python(code)` and, if present,
    `put_file(path, data)`). The environment's files are copied into the sandbox's work directory before the first
    run; the interpreter keeps its state across calls, as the python tool's description promises."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self._seeded = False

    async def run(self, code: str, files: dict[str, str]) -> str:
        if not self._seeded:
            for name, text in sorted(files.items()):
                if hasattr(self.sandbox, "put_file"):
                    await self.sandbox.put_file(name, text)
                else:
                    await self.sandbox.run_python(f"open({name!r}, 'w').write({text!r})")
            self._seeded = True
        return render_exec_result(await self.sandbox.run_python(code))


def render_exec_result(result: Any) -> str:
    """Text a model reads: stdout, then stderr, then the exception and whether the run timed out."""
    if isinstance(result, str):
        return result
    parts = [getattr(result, "stdout", "") or ""]
    if getattr(result, "stderr", ""):
        parts.append(result.stderr)
    if getattr(result, "exc_type", None) and result.exc_type not in "".join(parts):
        parts.append(f"{result.exc_type}: {getattr(result, 'exc_message', '')}")
    if getattr(result, "timed_out", False):
        parts.append("[timed out: the code was stopped]")
    return "\n".join(p.rstrip("\n") for p in parts if p) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# Executing one call


@dataclass(slots=True)
class ToolContext:
    """What an implementation sees: the workspace, its own config, the environment's bindings and capabilities."""

    ws: Workspace
    config: dict[str, Any]
    env: Environment
    search: SearchBackend | None = None

    def c(self, canonical: str) -> str:
        """Actual collection name for a canonical one."""
        return self.env.bindings.get("collections", {}).get(canonical, canonical)

    def f(self, canonical: str) -> str:
        """Actual field name for a canonical one."""
        return self.env.bindings.get("fields", {}).get(canonical, canonical)


@dataclass(slots=True)
class ToolResult:
    tool: str
    arguments: Any
    """As the model sent them (an object, or raw text when it was not valid JSON)."""
    value: Any
    is_error: bool = False
    crashed: bool = False
    """The implementation raised something other than `ToolCallError`: a bug, never the model's fault."""

    @property
    def content(self) -> str:
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, ensure_ascii=False, separators=(", ", ": "))


def _resolve(impl: str) -> Callable[[ToolContext, dict[str, Any]], Any]:
    from agentkit.envs.families import resolve  # families import this module; resolve lazily

    return resolve(impl)


def prepare_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any] | str:
    """Validate against the tool's schema, flatten nested argument objects, map names to canonical ones."""
    problems = check_arguments(spec.parameters, arguments)
    if problems:
        lines = "\n".join(f"- {p}" for p in problems[:8])
        return f"Invalid arguments for '{spec.name}':\n{lines}"
    cfg = spec.config
    flat = arguments
    for key in cfg.get("flatten", ()):
        if key in flat:
            flat = {**{k: v for k, v in flat.items() if k != key}, **flat[key]}
    names = cfg.get("params")
    if names:
        flat = {names.get(k, k): v for k, v in flat.items()}
    return flat


def call_tool(
    env: Environment,
    ws: Workspace,
    name: str,
    arguments: Any,
    *,
    search: SearchBackend | None = None,
    python: ReferencePython | None = None,
) -> ToolResult:
    """Run one call synchronously. Never raises for a bad call: problems come back as error results."""
    spec = env.tool(name)
    if spec is None:
        known = ", ".join(t.name for t in env.tools)
        return ToolResult(name, arguments, f"Unknown tool '{name}'. Available tools: {known}", True)
    if not isinstance(arguments, dict):
        return ToolResult(name, arguments, f"Arguments for '{name}' must be a JSON object", True)
    args = prepare_arguments(spec, arguments)
    if isinstance(args, str):
        return ToolResult(name, arguments, args, True)
    if spec.impl == PYTHON_IMPL:
        if python is None:
            return ToolResult(name, arguments, "no Python runner is attached to this episode", True)
        return ToolResult(name, arguments, python.run_sync(args["code"], env.files))
    try:
        fn = _resolve(spec.impl)
        value = fn(ToolContext(ws, spec.config, env, search), args)
    except ToolCallError as exc:
        return ToolResult(name, arguments, f"Error: {exc}", True)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in an implementation must not kill an episode
        return ToolResult(name, arguments, f"Internal error in '{name}': {type(exc).__name__}: {exc}", True, True)
    return ToolResult(name, arguments, value)


@dataclass(slots=True)
class Trace:
    ws: Workspace
    results: list[ToolResult]

    def diff(self) -> Diff:
        return self.ws.diff()


def execute(
    env: Environment,
    calls: list[Call],
    *,
    search: SearchBackend | None = None,
    python: ReferencePython | None = None,
) -> Trace:
    """Run `calls` in order over a copy-on-write view of `env.state` (which is never modified)."""
    ws = Workspace(env.state)
    results = [call_tool(env, ws, c.tool, c.arguments, search=search, python=python) for c in calls]
    return Trace(ws, results)


def score(record: TaskRecord, ws: Workspace, answer: str | None) -> Verdict:
    return record.verifier.check(ws.diff(), answer, ws.get)


# --------------------------------------------------------------------------------------------------------------------
# Episode: one agent's private run of a task


@dataclass
class CallLog:
    tool: str
    arguments: Any
    content: str
    is_error: bool


@dataclass
class Episode:
    """A task bound for one agent run: agentkit `Tool`s over a private deep copy of the state, a log of every
    call, and `score(answer)` against the task's verifier. Concurrent episodes never share state.

    `python`: a `PythonRunner` for families with data files (e.g. `SandboxPython(sandbox)`); without one the python
    tool answers with an error saying so. `search`: a `SearchBackend` (default: BM25 over the task's corpus).
    """

    record: TaskRecord
    python: PythonRunner | None = None
    search: SearchBackend | None = None
    log: list[CallLog] = field(default_factory=list)
    sandbox: Any = None
    """An environment package's task (`impl="package.tool"`) runs in this `agentkit.sandbox.Sandbox`: its tools,
    data and verifier live in a session there (`agentkit.envs.packages.box.PackageSession`)."""

    def __post_init__(self) -> None:
        env = self.record.environment
        self.env = Environment(env.family, env.tools, copy_json(env.state), env.bindings, env.files, env.corpus)
        self.ws = Workspace(self.env.state)
        if self.search is None and env.corpus:
            self.search = BM25Search(env.corpus)
        self.package: Any = None
        if any(t.impl == PACKAGE_IMPL for t in env.tools):
            from agentkit.envs.packages.session import session_for

            self.package = session_for(self.record, self.sandbox)

    def _parse(self, name: str, arguments: str | dict[str, Any] | None) -> Any:
        """The arguments as an object, or an error result for malformed JSON."""
        if arguments is None:
            return {}
        if isinstance(arguments, str):
            try:
                return json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                return ToolResult(name, arguments, f"Arguments for '{name}' are not valid JSON: {exc.msg}", True)
        return arguments

    async def acall(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        """Run one call (arguments as the model sent them: JSON text or an object) and log it."""
        args = self._parse(name, arguments)
        spec = self.env.tool(name)
        if isinstance(args, ToolResult):
            res = args
        elif self.package is not None:
            res = await self.package.tool_result(name, args, spec)
        elif spec is not None and spec.impl == PYTHON_IMPL and isinstance(args, dict):
            res = await self._run_python(spec, args)
        else:
            res = call_tool(self.env, self.ws, name, args, search=self.search)
        self._log(res)
        return res

    def call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        """Synchronous `acall` for scripts and tests; the python tool needs `acall` (its runner is async)."""
        args = self._parse(name, arguments)
        spec = self.env.tool(name)
        if (spec is not None and spec.impl == PYTHON_IMPL) or self.package is not None:
            raise RuntimeError("this tool runs in a sandbox: use `await episode.acall(...)`")
        res = args if isinstance(args, ToolResult) else call_tool(self.env, self.ws, name, args, search=self.search)
        self._log(res)
        return res

    async def _run_python(self, spec: ToolSpec, args: dict[str, Any]) -> ToolResult:
        prepared = prepare_arguments(spec, args)
        if isinstance(prepared, str):
            return ToolResult(spec.name, args, prepared, True)
        if self.python is None:
            return ToolResult(
                spec.name, args,
                "No Python runner is attached to this episode: create it with "
                "Episode(record, python=SandboxPython(sandbox)).", True,
            )
        try:
            out = await self.python.run(prepared["code"], self.env.files)
        except Exception as exc:  # noqa: BLE001 - sandbox failures are results, not crashes
            return ToolResult(spec.name, args, f"python failed: {type(exc).__name__}: {exc}", True)
        return ToolResult(spec.name, args, out)

    def _log(self, res: ToolResult) -> None:
        self.log.append(CallLog(res.tool, res.arguments, res.content, res.is_error))

    def tools(self) -> list[Any]:
        """The environment's tools as agentkit `Tool`s bound to this episode."""
        from agentkit.errors import ToolError
        from agentkit.tools import Tool

        def bind(spec: ToolSpec) -> Any:
            async def fn(**kwargs: Any) -> str:
                res = await self.acall(spec.name, kwargs)
                if res.is_error:
                    raise ToolError(res.content)
                return res.content

            return Tool.from_schema(spec.name, spec.description, spec.parameters, fn)

        return [bind(s) for s in self.env.tools]

    @property
    def state(self) -> State:
        return self.ws.materialise()

    def score(self, answer: str | None) -> Verdict:
        return score(self.record, self.ws, answer)

    async def ascore(self, answer: str | None) -> Verdict:
        """`score`, also for a package's task, whose verifier runs in the episode's sandbox."""
        return await self.package.score(answer) if self.package is not None else self.score(answer)

    def diff(self) -> Diff:
        """What the episode changed (for a package's task: known once `ascore` ran)."""
        return self.package.diff() if self.package is not None else self.ws.diff()
