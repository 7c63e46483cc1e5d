"""The JSON data model of a task: `Environment` + `Task` + `Solution` + `Verifier`, bundled as a `TaskRecord`.

Everything here is plain data that round-trips through JSON, so a task set is a JSONL file with one self-contained task
per line. Tool *implementations* are not serialised: a `ToolSpec` names its implementation (`impl`, e.g.
"ledger.transfer") and carries the bindings it needs (`config`); the runtime resolves the name in the family registry.

Verifiers check outcomes, never paths: the exact set of changed/created/deleted records (so collateral damage fails),
intent predicates on the records the task is about, and the answer (numeric tolerance or normalised string match).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.envs.errors import SpecError

SCHEMA_VERSION = 1
"""Bump when a record written by this version cannot be read by the previous one."""

Record = dict[str, Any]
State = dict[str, dict[str, Record]]
"""collection name -> record id -> record (the id is the key, not a field of the record)."""
Diff = dict[str, dict[str, Any]]
"""{"changed": {coll: {id: {field: new}}}, "created": {coll: [record]}, "deleted": {coll: [id]}}"""


def canonical_json(obj: Any) -> str:
    """The one serialisation used for hashing and for output, so equal data gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _need(d: Any, key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise SpecError(f"{where}: expected a JSON object, got {type(d).__name__}")
    if key not in d:
        raise SpecError(f"{where}: missing key {key!r}")
    return d[key]


# --------------------------------------------------------------------------------------------------------------------
# Environment


@dataclass(slots=True)
class ToolSpec:
    """One tool as the model sees it (name, description, JSON Schema) plus how the runtime implements it."""

    name: str
    description: str
    parameters: dict[str, Any]
    impl: str
    """"<family>.<operation>" (or "kit.<operation>" for shared ones); resolved by `agentkit.envs.families.resolve`."""
    config: dict[str, Any] = field(default_factory=dict)
    """Bindings for the implementation: `params` maps the schema's argument names to canonical ones, etc."""
    writes: bool = False
    """True when the tool can change the state; used by the drop-a-step guarantee and by trajectories."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "impl": self.impl,
            "config": self.config,
            "writes": self.writes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolSpec:
        w = "tool"
        return cls(
            name=_need(d, "name", w),
            description=_need(d, "description", w),
            parameters=_need(d, "parameters", w),
            impl=_need(d, "impl", w),
            config=d.get("config", {}),
            writes=bool(d.get("writes", False)),
        )


@dataclass(slots=True)
class Environment:
    """Tools over a JSON state, plus optional data files (name -> text) and a document corpus."""

    family: str
    tools: list[ToolSpec]
    state: State
    bindings: dict[str, Any] = field(default_factory=dict)
    """Environment-wide vocabulary: actual collection and field names for canonical ones."""
    files: dict[str, str] = field(default_factory=dict)
    corpus: list[dict[str, str]] = field(default_factory=list)
    """Documents {"id", "title", "text"} searched by the family's search tool."""

    def tool(self, name: str) -> ToolSpec | None:
        for t in self.tools:
            if t.name == name:
                return t
        return None

    def signature_hash(self) -> str:
        """Distinctness key: tool signatures + state schema (collections, field names and JSON types)."""
        schema: dict[str, list[str]] = {}
        for coll, records in self.state.items():
            types: dict[str, str] = {}
            for rec in records.values():
                if rec.keys() - types.keys():
                    types.update((k, type(v).__name__) for k, v in rec.items() if k not in types)
            schema[coll] = sorted(f"{k}:{t}" for k, t in types.items())
        sig = {
            "tools": [[t.name, t.parameters] for t in sorted(self.tools, key=lambda t: t.name)],
            "state": schema,
            "files": sorted(self.files),
            "corpus": bool(self.corpus),
        }
        return short_hash(canonical_json(sig))

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "tools": [t.to_dict() for t in self.tools],
            "state": self.state,
            "bindings": self.bindings,
            "files": self.files,
            "corpus": self.corpus,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Environment:
        w = "environment"
        state = _need(d, "state", w)
        if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
            raise SpecError("environment.state: expected {collection: {id: record}}")
        return cls(
            family=_need(d, "family", w),
            tools=[ToolSpec.from_dict(t) for t in _need(d, "tools", w)],
            state=state,
            bindings=d.get("bindings", {}),
            files=d.get("files", {}),
            corpus=d.get("corpus", []),
        )


# --------------------------------------------------------------------------------------------------------------------
# Task and solution


@dataclass(slots=True)
class Task:
    task_id: str
    instruction: str
    family: str
    difficulty: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "instruction": self.instruction,
            "family": self.family,
            "difficulty": self.difficulty,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        w = "task"
        return cls(
            _need(d, "task_id", w), _need(d, "instruction", w), _need(d, "family", w),
            int(_need(d, "difficulty", w)), int(_need(d, "seed", w)),
        )


@dataclass(slots=True)
class Call:
    """One tool call of a reference solution; `thought` is the short reasoning shown in trajectories.

    `anchor` is the phrase of the task this step hinges on (a month, a route, a new setting), kept apart from the
    thought: whether a trajectory restates it is training-data design, chosen when trajectories are rendered
    (`agentkit.envs.trajectories.RenderStyle`), so the task set is the same whatever model it trains."""

    tool: str
    arguments: dict[str, Any]
    thought: str = ""
    anchor: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"tool": self.tool, "arguments": self.arguments, "thought": self.thought}
        if self.anchor:
            out["anchor"] = self.anchor
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Call:
        return cls(_need(d, "tool", "call"), _need(d, "arguments", "call"), d.get("thought", ""),
                   d.get("anchor", ""))


@dataclass(slots=True)
class Solution:
    """Ordered tool calls and the final answer (None when the task asks for no answer)."""

    calls: list[Call]
    answer: str | None = None
    thought: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"calls": [c.to_dict() for c in self.calls], "answer": self.answer, "thought": self.thought}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Solution:
        return cls([Call.from_dict(c) for c in _need(d, "calls", "solution")], d.get("answer"), d.get("thought", ""))


# --------------------------------------------------------------------------------------------------------------------
# Verification

_NUM_RE = re.compile(r"(?<![\w.\-])-?\d[\d,]*(?:\.\d+)?(?![\w])")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_text(text: str) -> str:
    """Casefold, turn punctuation into spaces, collapse whitespace: 'Dr. Ana-Lee!' -> 'dr ana lee'."""
    return _NON_ALNUM.sub(" ", text.casefold()).strip()


def numbers_in(text: str) -> list[float]:
    """Numbers a reader would see in `text` ('1,234.50' -> 1234.5); digits inside ids such as 'A-17' are ignored."""
    out = []
    for m in _NUM_RE.finditer(text):
        raw = m.group(0).replace(",", "")
        try:
            out.append(float(raw))
        except ValueError:
            continue
    return out


def values_equal(a: Any, b: Any, tol: float = 1e-6) -> bool:
    """JSON equality with a numeric tolerance (ints and floats compare by value, bools only to bools)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y, tol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass(slots=True)
class AnswerCheck:
    """What the final answer must contain.

    kind "number": some number in the answer is within `tolerance` of `value`, and the answer mentions at most
    `max_numbers` numbers (a list of every balance is not an answer). kind "text": every string of `values` appears
    as whole words after normalisation, and none of `reject` (the plausible wrong answers) does.
    """

    kind: str
    value: float | None = None
    tolerance: float = 0.01
    max_numbers: int = 4
    values: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)

    def check(self, answer: str | None) -> str | None:
        """None when the answer passes, else the reason it fails."""
        if answer is None or not answer.strip():
            return "no final answer was given, but the task asks for one"
        if self.kind == "number":
            assert self.value is not None
            nums = numbers_in(answer)
            if not nums:
                return f"the answer contains no number (expected {self.value:g})"
            if len(set(nums)) > self.max_numbers:
                return f"the answer lists {len(set(nums))} numbers; give the one asked for"
            if not any(abs(n - self.value) <= self.tolerance for n in nums):
                return f"no number in the answer is within {self.tolerance:g} of the expected value"
            return None
        norm = f" {normalise_text(answer)} "
        for v in self.values:
            if f" {normalise_text(v)} " not in norm:
                return f"the answer does not name {v!r}"
        for r in self.reject:
            if f" {normalise_text(r)} " in norm:
                return f"the answer also names {r!r}, which is wrong"
        return None

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "number":
            return {"kind": "number", "value": self.value, "tolerance": self.tolerance, "max_numbers": self.max_numbers}
        return {"kind": self.kind, "values": self.values, "reject": self.reject}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnswerCheck:
        kind = _need(d, "kind", "answer")
        if kind not in ("number", "text"):
            raise SpecError(f"answer.kind must be 'number' or 'text', got {kind!r}")
        return cls(
            kind=kind,
            value=d.get("value"),
            tolerance=float(d.get("tolerance", 0.01)),
            max_numbers=int(d.get("max_numbers", 4)),
            values=list(d.get("values", [])),
            reject=list(d.get("reject", [])),
        )


@dataclass(slots=True)
class Predicate:
    """An intent statement about one record of the final state: `field` op `value` (op: eq | absent)."""

    collection: str
    id: str
    field: str | None
    op: str
    value: Any = None

    def check(self, lookup: Callable[[str, str], dict[str, Any] | None]) -> str | None:
        rec = lookup(self.collection, self.id)
        where = f"{self.collection}/{self.id}"
        if self.op == "absent":
            return None if rec is None else f"{where} should no longer exist"
        if rec is None:
            return f"{where} does not exist"
        if self.op == "eq":
            got = rec.get(self.field) if self.field else rec
            if not values_equal(got, self.value, 0.005):
                return f"{where}.{self.field} is {got!r}, expected {self.value!r}"
            return None
        raise SpecError(f"unknown predicate op {self.op!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "id": self.id, "field": self.field, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Predicate:
        return cls(
            _need(d, "collection", "predicate"), _need(d, "id", "predicate"), d.get("field"),
            _need(d, "op", "predicate"), d.get("value"),
        )


@dataclass(slots=True)
class Verdict:
    passed: bool
    failures: list[str]


def empty_diff() -> Diff:
    return {"changed": {}, "created": {}, "deleted": {}}


@dataclass(slots=True)
class Verifier:
    """Outcome checks: `expect` is the exact state diff (derived by executing the reference), `predicates` the
    intent on the records the task is about, `answer` the check of the final answer (None: no answer asked)."""

    expect: Diff
    predicates: list[Predicate] = field(default_factory=list)
    answer: AnswerCheck | None = None
    tolerance: float = 0.005
    program: str | None = None
    """An environment package's `verify.py` (model-written code): it runs only in the episode's sandbox session
    (`Episode.ascore`), never here."""

    def check(
        self, diff: Diff, answer: str | None, lookup: Callable[[str, str], dict[str, Any] | None]
    ) -> Verdict:
        if self.program is not None:
            return Verdict(False, ["this task's verifier is a program: score it in its sandbox (Episode.ascore)"])
        failures = self.diff_failures(diff)
        failures += [f for p in self.predicates if (f := p.check(lookup))]
        if self.answer is not None and (f := self.answer.check(answer)):
            failures.append(f)
        return Verdict(not failures, failures)

    def diff_failures(self, got: Diff) -> list[str]:
        """Compare the episode's diff with the expected one; every difference is a readable failure."""
        out: list[str] = []
        exp_changed, got_changed = self.expect["changed"], got["changed"]
        for coll in sorted(set(exp_changed) | set(got_changed)):
            e, g = exp_changed.get(coll, {}), got_changed.get(coll, {})
            for rid in sorted(set(e) | set(g)):
                if rid not in g:
                    out.append(f"{coll}/{rid} was not changed (expected {canonical_json(e[rid])})")
                elif rid not in e:
                    out.append(f"collateral change: {coll}/{rid} changed {sorted(g[rid])} but should be untouched")
                else:
                    for fld in sorted(set(e[rid]) | set(g[rid])):
                        if fld not in g[rid]:
                            out.append(f"{coll}/{rid}.{fld} unchanged, expected {e[rid][fld]!r}")
                        elif fld not in e[rid]:
                            out.append(f"collateral change: {coll}/{rid}.{fld} should be untouched")
                        elif not values_equal(g[rid][fld], e[rid][fld], self.tolerance):
                            out.append(f"{coll}/{rid}.{fld} is {g[rid][fld]!r}, expected {e[rid][fld]!r}")
        for coll in sorted(set(self.expect["deleted"]) | set(got["deleted"])):
            e_del, g_del = set(self.expect["deleted"].get(coll, [])), set(got["deleted"].get(coll, []))
            out += [f"{coll}/{rid} should have been deleted" for rid in sorted(e_del - g_del)]
            out += [f"collateral change: {coll}/{rid} was deleted" for rid in sorted(g_del - e_del)]
        for coll in sorted(set(self.expect["created"]) | set(got["created"])):
            pending = list(got["created"].get(coll, []))
            for rec in self.expect["created"].get(coll, []):
                hit = next((i for i, g in enumerate(pending) if values_equal(g, rec, self.tolerance)), None)
                if hit is None:
                    out.append(f"missing new record in {coll}: {canonical_json(rec)}")
                else:
                    pending.pop(hit)
            out += [f"collateral change: unexpected new record in {coll}: {canonical_json(r)}" for r in pending]
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {
            "expect": self.expect,
            "predicates": [p.to_dict() for p in self.predicates],
            "answer": self.answer.to_dict() if self.answer else None,
            "tolerance": self.tolerance,
        }
        if self.program is not None:
            out["program"] = self.program
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verifier:
        expect = _need(d, "expect", "verifier")
        for k in ("changed", "created", "deleted"):
            _need(expect, k, "verifier.expect")
        ans = d.get("answer")
        return cls(
            expect=expect,
            predicates=[Predicate.from_dict(p) for p in d.get("predicates", [])],
            answer=AnswerCheck.from_dict(ans) if ans else None,
            tolerance=float(d.get("tolerance", 0.005)),
            program=d.get("program"),
        )


# --------------------------------------------------------------------------------------------------------------------
# The record and JSONL I/O


@dataclass(slots=True)
class TaskRecord:
    """One self-contained task: the line of a task-set JSONL file."""

    task: Task
    environment: Environment
    solution: Solution
    verifier: Verifier
    meta: dict[str, Any] = field(default_factory=dict)
    """Generator facts: `hidden` (values the agent must look up), `steps`, `writes`, `env_hash`, `atoms`."""
    version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "task": self.task.to_dict(),
            "environment": self.environment.to_dict(),
            "solution": self.solution.to_dict(),
            "verifier": self.verifier.to_dict(),
            "meta": self.meta,
        }

    def to_json(self) -> str:
        return self.serialise()[0]

    def content_hash(self) -> str:
        """Identity of the task's content (environment, instruction, verifier), independent of id and seed."""
        return self.serialise()[1]

    def serialise(self) -> tuple[str, str]:
        """(canonical JSON line, content hash) with each part serialised once; the line equals
        `canonical_json(self.to_dict())` (top-level keys in sorted order)."""
        env = canonical_json(self.environment.to_dict())
        ver = canonical_json(self.verifier.to_dict())
        line = (
            f'{{"environment":{env},"meta":{canonical_json(self.meta)},'
            f'"solution":{canonical_json(self.solution.to_dict())},"task":{canonical_json(self.task.to_dict())},'
            f'"verifier":{ver},"version":{canonical_json(self.version)}}}'
        )
        return line, short_hash(f"{env}\n{canonical_json(self.task.instruction)}\n{ver}")

    @classmethod
    def from_dict(cls, d: Any) -> TaskRecord:
        version = _need(d, "version", "record")
        if version != SCHEMA_VERSION:
            raise SpecError(
                f"schema version {version!r}, but this agentkit reads version {SCHEMA_VERSION}; "
                "regenerate the file with `agentkit envs generate`"
            )
        return cls(
            task=Task.from_dict(_need(d, "task", "record")),
            environment=Environment.from_dict(_need(d, "environment", "record")),
            solution=Solution.from_dict(_need(d, "solution", "record")),
            verifier=Verifier.from_dict(_need(d, "verifier", "record")),
            meta=d.get("meta", {}),
        )

    @classmethod
    def from_json(cls, line: str) -> TaskRecord:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
        try:
            return cls.from_dict(data)
        except SpecError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise SpecError(f"malformed record: {exc}") from exc


@dataclass(slots=True)
class LineError:
    """A JSONL line that could not be read: reported with its number, never fatal for the rest of the file."""

    line_no: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.message}"


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, TaskRecord | LineError]]:
    """Yield (line number, record or error) for every non-blank line; a bad line never stops the file."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield no, TaskRecord.from_json(line)
            except SpecError as exc:
                yield no, LineError(no, str(exc))


def write_jsonl(path: str | Path, records: Iterable[TaskRecord]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(r.to_json() + "\n")
            n += 1
    return n
