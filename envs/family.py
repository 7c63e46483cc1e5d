"""The authoring API of a family: what a folder under `envs/families/` defines and the helpers it builds with.

A family provides three things (see docs/envs.md, "Writing a family"):
- a data model: `build(rng, difficulty) -> World` (state, vocabulary, tools with varied names/signatures);
- tool implementations: `ops`, functions `(ToolContext, canonical_args) -> JSON value`;
- task templates ("atoms"): functions `(GoalBuilder) -> None` that *execute* read calls against the world to discover
  values, compute what must be done, perform the writes, and say in words what was asked.

Templates never write gold values by hand: every value they act on or report comes from a tool result of the
reference run (the `GoalBuilder.do` return value), and the verifier's expected diff is derived by executing the
composed reference from scratch.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkit.envs.errors import GenerationError
from agentkit.envs.runtime import (
    BM25Search,
    ReferencePython,
    SearchBackend,
    ToolContext,
    Workspace,
    call_tool,
)
from agentkit.envs.spec import AnswerCheck, Call, Environment, Predicate, ToolSpec

Op = Callable[[ToolContext, dict[str, Any]], Any]
Atom = Callable[["GoalBuilder"], None]


@dataclass
class Family:
    name: str
    description: str
    ops: Mapping[str, Op]
    build: Callable[[random.Random, int], World]
    atoms: Sequence[Atom]
    persona: str = "You are a careful operations assistant."
    """First line of the system prompt of trajectories."""


@dataclass
class World:
    """A generated environment plus the bookkeeping templates need while composing a task."""

    env: Environment
    ops: dict[str, ToolSpec]
    """Canonical operation key -> the tool that implements it in this environment (actual name and arguments)."""
    rng: random.Random
    difficulty: int
    data: dict[str, Any] = field(default_factory=dict)
    """Family-specific handles for templates (e.g. the people in the state)."""
    claimed: set[tuple[str, str]] = field(default_factory=set)
    """Records read or written by goals already in the task; later goals pick other records."""
    search: SearchBackend | None = None
    python: ReferencePython | None = None

    def __post_init__(self) -> None:
        self.ws = Workspace(self.env.state)
        self._fields: dict[str, str] = self.env.bindings.get("fields", {})

    def f(self, canonical: str) -> str:
        return self._fields.get(canonical, canonical)

    def c(self, canonical: str) -> str:
        return self.env.bindings.get("collections", {}).get(canonical, canonical)

    def has(self, op: str) -> bool:
        return op in self.ops

    def make_call(self, op: str, thought: str, args: dict[str, Any]) -> Call:
        """A call of operation `op` with canonical argument names, rendered in this environment's signature."""
        spec = self.ops.get(op)
        if spec is None:
            raise GenerationError(f"{self.env.family}: operation {op!r} has no tool in this environment")
        inverse = {canon: actual for actual, canon in spec.config.get("params", {}).items()}
        nest: dict[str, str] = spec.config.get("nest", {})
        out: dict[str, Any] = {}
        for canon, value in args.items():
            if value is None:
                continue
            actual = inverse.get(canon, canon)
            if canon in nest:
                out.setdefault(nest[canon], {})[actual] = value
            else:
                out[actual] = value
        return Call(spec.name, out, str(thought), getattr(thought, "anchor", ""))

    def unclaimed(self, coll: str, pred: Callable[[str, dict[str, Any]], bool] | None = None) -> list[str]:
        """Ids of records of `coll` (actual name) no goal has used yet, optionally filtered."""
        return [
            rid for rid, rec in self.ws.records(coll)
            if (coll, rid) not in self.claimed and (pred is None or pred(rid, rec))
        ]


@dataclass
class Goal:
    """One composed sub-task: what was asked, the calls that do it, and what the verifier must know."""

    instruction: str
    calls: list[Call]
    hidden: list[str]
    predicates: list[Predicate]
    answer: AnswerCheck | None = None
    answer_text: str | None = None
    answer_thought: str = ""
    tags: list[str] = field(default_factory=list)


class GoalBuilder:
    """Builds one goal by running calls against the world's current state (the state the reference will see)."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.calls: list[Call] = []
        self.hidden: list[str] = []
        self.predicates: list[Predicate] = []
        self.claims: set[tuple[str, str]] = set()
        self.instruction = ""
        self.answer: AnswerCheck | None = None
        self.answer_text: str | None = None
        self.answer_thought = ""
        self.tags: list[str] = []

    @property
    def rng(self) -> random.Random:
        return self.w.rng

    def do(self, op: str, thought: str, **args: Any) -> Any:
        """Append a call of `op` and run it now; its result is what later steps may use. Errors abort the goal."""
        call = self.w.make_call(op, thought, args)
        res = call_tool(self.w.env, self.w.ws, call.tool, call.arguments, search=self.w.search, python=self.w.python)
        if res.is_error:
            raise GenerationError(f"reference step {call.tool} failed: {res.content}")
        self.calls.append(call)
        return res.value

    def calc(self, expression: str, thought: str) -> Any:
        """Compute with the environment's calculator tool, as a step of the reference: the trajectory then shows
        the agent writing the expression from values it has read and copying the result, never doing digits in
        its head. Returns the result. (How the expression is spaced for a tokenizer is the trajectory renderer's
        choice, not the task's: `RenderStyle.space_before_expression`.)"""
        return self.do("calculate", thought, expression=expression.strip())["result"]

    def add_up(self, values: Sequence[float], what: str, labels: Sequence[str]) -> Any:
        """The sum of a listing's values through the calculator (one value is its own sum: no call). The
        expression writes each value the way the results do (`money`), so every digit is a copy.

        The thought reads "Adding up the 3 salaries: #1 HR-2091 158000, #2 ...": how many values, copied from the
        listing's `total`, then each value numbered, with its record id or name, in result order. The labels give
        every copy an anchor; the stated count is meant to tell the model where the list ends (without it, the
        commonest failed sum repeated the last item). It did not suffice: a small model copies the count right and
        still numbers past it or stops short (docs/envs.md and docs/quality_history.md have the counts), so listings
        that can add up (`sum_of`) now do; this remains for the ledger, whose postings are negative amounts the answer
        states without their sign."""
        if len(values) == 1:
            return values[0]
        if len(labels) != len(values):
            raise ValueError(f"add_up got {len(labels)} labels for {len(values)} values")
        listed = ", ".join(f"#{n} {label} {money(v)}" for n, (label, v) in enumerate(zip(labels, values, strict=True), 1))
        return self.calc(" + ".join(money(v) for v in values), f"Adding up the {len(values)} {what}: {listed}.")

    def find_all(self, op: str, thought: str, **filters: Any) -> list[dict[str, Any]]:
        """Call a paginated search until the last page; returns every item (what an agent must also do)."""
        spec = self.w.ops[op]
        cfg = spec.config
        style, items_key = cfg.get("paging"), cfg["items_key"]
        items: list[dict[str, Any]] = []
        page_args: dict[str, Any] = {}
        for n in range(50):
            if style == "offset":
                page_args = {"offset": len(items), "limit": cfg["page_size"]}
            value = self.do(op, thought if n == 0 else "More results remain; fetching the next page.",
                            **filters, **page_args)
            items.extend(value[items_key])
            if style == "page" and value["page"] < value["pages"]:
                page_args = {"page": value["page"] + 1}
            elif style == "offset" and value.get("next_offset") is not None:
                continue
            elif style == "cursor" and value.get("next_cursor"):
                page_args = {"cursor": value["next_cursor"]}
            else:
                return items
        raise GenerationError("pagination did not end")

    def find_first(self, op: str, thought: str, **filters: Any) -> list[dict[str, Any]]:
        """One call of a search with `order_by` and/or bound filters: the first page, whose first item is the
        choice when the search sorts by what the task ranks on. Callers check the runner-up for a tie."""
        value = self.do(op, thought, **filters)
        items: list[dict[str, Any]] = value[self.w.ops[op].config["items_key"]]
        return items

    @staticmethod
    def first_of(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        """The choice of a page sorted by `key`: its first item, unless nothing matched or the runner-up ties with
        it (a tie has no single right answer, so the goal is drawn again)."""
        if not items:
            raise GenerationError("nothing matched")
        if len(items) > 1 and items[0][key] == items[1][key]:
            raise GenerationError("tie")
        return items[0]

    def count_all(self, op: str, thought: str, **filters: Any) -> int:
        """How many records a search matches: its `total` (one call, nothing to count; every paging style
        carries one)."""
        return int(self.do(op, thought, **filters)["total"])

    def sum_all(self, op: str, field: str, thought: str, **filters: Any) -> Any:
        """The sum of `field` over every record a search matches: one call with `sum_of`, whose result's `sum` the
        answer copies (see `add_choosing_params` for why the tool adds up rather than the agent)."""
        value = self.do(op, thought, **filters, sum_of=field)
        if not value["total"]:
            raise GenerationError("nothing to add up")
        return value["sum"]

    def claim(self, coll: str, *ids: str) -> None:
        for rid in ids:
            if (coll, rid) in self.w.claimed:
                raise GenerationError(f"{coll}/{rid} is already used by this task")
            self.claims.add((coll, rid))
            self.w.claimed.add((coll, rid))

    def pick_record(self, coll: str, pred: Callable[[str, dict[str, Any]], bool] | None = None,
                    what: str = "record") -> tuple[str, dict[str, Any]]:
        """A random unclaimed record of `coll` (actual name) matching `pred`, claimed for this goal."""
        cands = self.w.unclaimed(coll, pred)
        if not cands:
            raise GenerationError(f"no suitable {what}")
        rid = pick(self.rng, cands)
        self.claim(coll, rid)
        rec = self.w.ws.get(coll, rid)
        assert rec is not None
        return rid, rec

    def param(self, topic: str, value: float | int, shown: str) -> str:
        """A number the task needs, as the instruction should say it.

        Usually that is `shown` itself. In a world with a policy handbook, the number is written into a new
        handbook document instead: the reference searches for the topic and reads the document (two more dependent
        steps), the number becomes a hidden look-up, and the instruction names only the topic."""
        w = self.w
        if not w.data.get("handbook"):
            return shown
        from agentkit.envs.families._kit import policy_doc

        title = f"{topic.capitalize()} policy"
        if any(d["title"] == title for d in w.env.corpus):
            raise GenerationError(f"the handbook already defines the {topic}")
        doc_id = f"POL-{100 + len(w.env.corpus)}"
        w.env.corpus.append(policy_doc(doc_id, topic, shown))
        w.search = BM25Search(w.env.corpus)
        hits = self.do("search_docs", f"The {topic} is defined in the policy handbook; searching for it.",
                       query=f"{topic} policy")
        if not any(h["doc_id"] == doc_id for h in hits):
            raise GenerationError("the handbook search does not surface the document")
        text = self.do("read_doc", f"{doc_id} is the {topic} policy; reading it.", doc_id=doc_id)["text"]
        if shown not in text:
            raise GenerationError("policy text does not state the value")
        self.hide(value, doc_id)
        return f"the {topic} from the policy handbook"

    def hide(self, *values: Any) -> None:
        """Values the agent has to look up: the instruction must not contain them."""
        self.hidden.extend(str(v) for v in values if v is not None and str(v).strip())

    def expect(self, coll: str, rid: str, fld: str | None, value: Any, op: str = "eq") -> None:
        """Intent: after the task, record `coll/rid` has `fld == value` (or, with op="absent", is gone)."""
        self.predicates.append(Predicate(coll, rid, fld, op, value))

    def say(self, text: str) -> None:
        self.instruction = text

    def answer_number(self, value: float, text: str, thought: str = "", tolerance: float = 0.01) -> None:
        self.answer = AnswerCheck("number", value=value, tolerance=tolerance)
        self.answer_text, self.answer_thought = text, thought or "I have everything I need to answer."

    def answer_names(self, values: list[str], text: str, reject: list[str], thought: str = "") -> None:
        reject = sorted({r for r in reject if r not in values and not any(
            f" {r.casefold()} " in f" {v.casefold()} " for v in values)})
        self.answer = AnswerCheck("text", values=list(values), reject=reject[:6])
        self.answer_text, self.answer_thought = text, thought or "I have everything I need to answer."

    def goal(self) -> Goal:
        if not self.instruction:
            raise GenerationError("template produced no instruction")
        return Goal(self.instruction, self.calls, self.hidden, self.predicates, self.answer, self.answer_text,
                    self.answer_thought, self.tags)


class Anchored(str):
    """A step's thought together with the task phrase it hinges on (`Call.anchor`): the thought reads as the
    plain string; the renderer may restate the anchor before it."""

    anchor: str

    def __new__(cls, anchor: str, thought: str) -> Anchored:
        self = super().__new__(cls, thought)
        self.anchor = anchor
        return self


def pick(rng: random.Random, options: Sequence[Any]) -> Any:
    """`rng.choice`, about twice as fast (generation draws hundreds of thousands of these); deterministic."""
    return options[int(rng.random() * len(options))]


def money(x: float) -> str:
    """An amount in instructions, thoughts and answers, written the way the tools' JSON writes it (1234.5 ->
    '1234.5', rounded to cents): a value read in a result then reappears character for character, so an agent (and
    the small local model above all) copies it instead of reformatting digits. Answers are checked by value."""
    return str(x) if isinstance(x, int) else json.dumps(round(float(x), 2))
