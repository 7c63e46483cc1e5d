"""Generating task sets in which every task is proven solvable and non-trivial before it is kept.

`build_task(family, difficulty, seed)` composes goals from the family's templates over a fresh world; the verifier's
expected diff is then derived by executing the composed reference from scratch. `check_task` proves the guarantees:

| reason (discard)    | what is checked                                                                   |
|---------------------|-----------------------------------------------------------------------------------|
| reference_error     | every reference call succeeds when executed through the runtime                   |
| reference_fails     | the executed reference passes the verifier (diff, intent predicates, answer)      |
| trivial             | doing nothing fails the verifier                                                   |
| redundant_step      | dropping any state-changing step of the reference fails the verifier              |
| leak                | no looked-up value appears in the instruction                                     |
| unseen_path         | every path the reference passes to a tool (or its directory) was shown to the     |
|                     | agent first, in the instruction or an earlier result: nothing is guessed          |
| nondeterministic    | regenerating from the same (family, difficulty, seed) gives the same task         |
| duplicate           | no two tasks of a set have the same content (checked by `generate`)               |
| compose             | the templates could not fill the difficulty's step budget (generation error)      |

A discarded task is counted by reason and replaced by the next attempt for the same slot, so a set has exactly n
tasks and the same arguments always give the same bytes, with any number of worker processes.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkit.envs.errors import GenerationError, SpecError
from agentkit.envs.families import families
from agentkit.envs.family import Family, Goal, GoalBuilder, World, pick
from agentkit.envs.runtime import BM25Search, ReferencePython, SearchBackend, Workspace, execute
from agentkit.envs.spec import (
    Solution,
    Task,
    TaskRecord,
    Verifier,
    empty_diff,
    normalise_text,
    numbers_in,
)
from agentkit.envs.wording import HELDOUT, TEMPLATE, TRAIN, WORDINGS, Wording, reword, wording_rng

MIN_CALLS = {1: 1, 2: 2, 3: 3, 4: 5, 5: 8}
MAX_CALLS = {1: 2, 2: 4, 3: 6, 4: 9, 5: 16}
"""Reference length per difficulty: 1-2 dependent calls at level 1, 8 or more at level 5."""
MAX_ATTEMPTS = 25
DISCARD_REASONS = (
    "compose", "reference_error", "reference_fails", "trivial", "redundant_step", "leak", "unseen_path",
    "nondeterministic",
    "duplicate",
)


def task_seed(seed: int, index: int, attempt: int) -> int:
    """Seed of one attempt at one slot of a set (53 bits, exact in JSON)."""
    h = hashlib.blake2b(f"{seed}:{index}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 11


# --------------------------------------------------------------------------------------------------------------------
# Building


def capabilities(world_or_env: Any) -> tuple[SearchBackend | None, ReferencePython | None]:
    env = getattr(world_or_env, "env", world_or_env)
    return (BM25Search(env.corpus) if env.corpus else None, ReferencePython() if env.files else None)


def compose_goals(family: Family, world: World) -> list[Goal]:
    """Add goals from random templates until the difficulty's step budget is met; at most one asks for an answer."""
    d = world.difficulty
    goals: list[Goal] = []
    total = 0
    answered = False
    for _ in range(4 * len(family.atoms) + 8):
        if total >= MIN_CALLS[d]:
            break
        atom = pick(world.rng, family.atoms)
        saved = {k: dict(v) for k, v in world.ws.writes.items()}
        saved_claims, saved_docs = set(world.claimed), len(world.env.corpus)
        gb = GoalBuilder(world)
        try:
            atom(gb)
            goal = gb.goal()
            if (goal.answer and answered) or total + len(goal.calls) > MAX_CALLS[d] or not goal.calls:
                raise GenerationError("goal does not fit")
        except GenerationError:
            world.ws.writes, world.claimed = saved, saved_claims
            if len(world.env.corpus) != saved_docs:  # a failed goal's handbook documents go too
                del world.env.corpus[saved_docs:]
                world.search = BM25Search(world.env.corpus)
            continue
        goals.append(goal)
        total += len(goal.calls)
        answered = answered or goal.answer is not None
    if total < MIN_CALLS[d]:
        raise GenerationError(f"could not reach {MIN_CALLS[d]} steps at difficulty {d}")
    return goals


_OPENERS = ("", "", "Hi! ", "Please handle this for me. ", "I need your help with the following. ")


def compose_instruction(rng: random.Random, goals: list[Goal]) -> str:
    """Join goal sentences in one of several layouts (single, numbered, bullets, 'Task n:')."""
    parts = [g.instruction for g in goals]
    if len(parts) == 1:
        return pick(rng, _OPENERS) + parts[0]
    opener = pick(rng, ("", "", "Hi! "))
    style = rng.randrange(3)
    if style == 0:
        body = "\n".join(f"{i}. {p}" for i, p in enumerate(parts, 1))
    elif style == 1:
        body = "\n".join(f"- {p}" for p in parts)
    else:
        body = " ".join(f"({chr(97 + i)}) {p}" for i, p in enumerate(parts))
    return f"{opener}{pick(rng, ('Please do all of this:', 'Things to do:', 'Here is the list:'))}\n{body}"


def build_task(family: Family, difficulty: int, seed: int, task_id: str | None = None) -> TaskRecord:
    """One candidate task (unchecked). Raises `GenerationError` when templates cannot fill the budget."""
    rng = random.Random(seed)
    world = family.build(rng, difficulty)
    world.search, world.python = capabilities(world)
    goals = compose_goals(family, world)
    env = world.env
    calls = [c for g in goals for c in g.calls]
    answer_goal = next((g for g in goals if g.answer is not None), None)
    solution = Solution(
        calls,
        answer_goal.answer_text if answer_goal else None,
        answer_goal.answer_thought if answer_goal else "All requested changes are done.",
    )
    # Gold = the state diff the reference's execution produced (the world's workspace ran exactly these calls, in
    # order, from the initial state); `check_task` re-executes from scratch and must reproduce it.
    verifier = Verifier(
        expect=world.ws.diff(),
        predicates=[p for g in goals for p in g.predicates],
        answer=answer_goal.answer if answer_goal else None,
    )
    task = Task(task_id or f"{family.name}-{difficulty}-{seed:x}", compose_instruction(rng, goals), family.name,
                difficulty, seed)
    writes = sum(1 for c in calls if (t := env.tool(c.tool)) is not None and t.writes)
    meta = {
        "hidden": sorted({h for g in goals for h in g.hidden}),
        "steps": len(calls),
        "writes": writes,
        "goals": len(goals),
        "env_hash": env.signature_hash(),
        "tags": sorted({t for g in goals for t in g.tags}),
    }
    return TaskRecord(task, env, solution, verifier, meta)


# --------------------------------------------------------------------------------------------------------------------
# Checking


_MARKERS = re.compile(r"(?m)^\d+\. |\([a-z]\) ")


def leaked(instruction: str, hidden: Sequence[str]) -> str | None:
    """The first looked-up value that appears in the instruction (numbers by value, text by whole words).
    List markers of the layout ("1. ", "(a) ") are not content and are ignored."""
    instruction = _MARKERS.sub(" ", instruction)
    text = f" {normalise_text(instruction)} "
    nums = set(numbers_in(instruction))
    for h in hidden:
        try:
            if float(h) in nums:
                return h
            continue
        except ValueError:
            pass
        n = normalise_text(h)
        if n and f" {n} " in text:
            return h
    return None


def check_task(record: TaskRecord, *, determinism: bool = True) -> str | None:
    """None when every guarantee holds, else the discard reason (see the module docstring)."""
    env, sol, ver = record.environment, record.solution, record.verifier
    search, python = capabilities(env)
    trace = execute(env, sol.calls, search=search, python=python)
    if any(r.is_error for r in trace.results):
        return "reference_error"
    if not ver.check(trace.diff(), sol.answer, trace.ws.get).passed:
        return "reference_fails"
    base = Workspace(env.state)
    if ver.check(empty_diff(), None, base.get).passed:
        return "trivial"
    for i, call in enumerate(sol.calls):
        spec = env.tool(call.tool)
        if spec is None or not spec.writes:
            continue
        rest = sol.calls[:i] + sol.calls[i + 1:]
        t = execute(env, rest, search=search, python=python)
        if ver.check(t.diff(), sol.answer, t.ws.get).passed:
            return "redundant_step"
    if leaked(record.task.instruction, record.meta.get("hidden", [])):
        return "leak"
    if unseen_path(record.task.instruction, sol.calls, [r.value for r in trace.results]) is not None:
        return "unseen_path"
    if determinism:
        fam = families().get(record.task.family)
        if fam is None:
            raise SpecError(f"unknown family {record.task.family!r}")
        try:
            again = build_task(fam, record.task.difficulty, record.task.seed, record.task.task_id)
        except GenerationError:
            return "nondeterministic"
        if record.meta.get("wording") in (TRAIN, HELDOUT):
            apply_wording(again, record.meta["wording"])
        if again.to_dict() != record.to_dict():  # structural equality; byte equality is tested on whole files
            return "nondeterministic"
    return None


def unseen_path(instruction: str, calls: Sequence[Any], results: Sequence[Any]) -> str | None:
    """The first path argument of `calls` that neither the instruction nor an earlier result names (itself or its
    directory), else None. A reference that uses such a path knows something the agent cannot find out, and a model
    trained on it learns to guess."""
    seen = instruction
    for call, value in zip(calls, results, strict=True):
        for arg in call.arguments.values():
            if isinstance(arg, str) and arg.startswith("/"):
                parent = arg.rstrip("/").rsplit("/", 1)[0] or "/"
                if arg not in seen and parent not in seen:
                    return arg
        seen += " " + str(value)
    return None


# --------------------------------------------------------------------------------------------------------------------
# Generating a set


@dataclass
class Slot:
    """The outcome of one slot of a set: the kept task (as its JSON line) and what was discarded on the way."""

    index: int
    line: str | None
    content_hash: str | None
    env_hash: str | None
    family: str
    difficulty: int
    next_attempt: int
    discards: Counter[str] = field(default_factory=Counter)


def plan(index: int, fams: Sequence[str], difficulties: Sequence[int]) -> tuple[str, int]:
    """Slot -> (family, difficulty): a balanced grid, so every family meets every difficulty."""
    return fams[index % len(fams)], difficulties[(index // len(fams)) % len(difficulties)]


def make_slot(
    seed: int, index: int, fams: Sequence[str], difficulties: Sequence[int], start_attempt: int = 0,
    skip_hashes: frozenset[str] = frozenset(), wording: Wording = TRAIN,
) -> Slot:
    name, d = plan(index, fams, difficulties)
    fam = families()[name]
    slot = Slot(index, None, None, None, name, d, start_attempt)
    for attempt in range(start_attempt, start_attempt + MAX_ATTEMPTS):
        s = task_seed(seed, index, attempt)
        slot.next_attempt = attempt + 1
        try:
            rec = build_task(fam, d, s, f"{name}-{d}-{index:06d}")
        except GenerationError:
            slot.discards["compose"] += 1
            continue
        reason = check_task(rec)
        line, digest = rec.serialise()
        if reason is None and digest in skip_hashes:
            reason = "duplicate"
        if reason:
            slot.discards[reason] += 1
            continue
        if wording != TEMPLATE:
            # Checked and deduplicated in the template's wording, so every wording of a seed holds the same tasks.
            apply_wording(rec, wording)
            line = rec.serialise()[0]
        slot.line, slot.content_hash, slot.env_hash = line, digest, rec.meta["env_hash"]
        return slot
    return slot


def apply_wording(rec: TaskRecord, wording: Wording) -> None:
    """Reword a checked task's instruction in place (the template's stays in `meta`). A rewording that would
    name a looked-up value keeps the template's."""
    template = rec.meta.get("instruction_template", rec.task.instruction)
    text = reword(template, wording_rng(rec.task.seed, wording), wording)
    if text != template and leaked(text, rec.meta.get("hidden", [])) is None:
        rec.meta["instruction_template"] = template
        rec.meta["wording"] = wording
        rec.task.instruction = text


def dedup_hash(rec: TaskRecord) -> str:
    """The hash duplicates are found by: the content hash in the template's wording, the same in every wording."""
    template = rec.meta.get("instruction_template")
    if template is None:
        return rec.content_hash()
    worded, rec.task.instruction = rec.task.instruction, template
    try:
        return rec.content_hash()
    finally:
        rec.task.instruction = worded


def _slot_job(args: tuple[int, int, tuple[str, ...], tuple[int, ...], Wording]) -> Slot:
    seed, index, names, diffs, wording = args
    return make_slot(seed, index, names, diffs, wording=wording)


def generate(
    n: int,
    seed: int = 0,
    fams: Sequence[str] | None = None,
    difficulties: Sequence[int] = (1, 2, 3, 4, 5),
    workers: int = 1,
    *,
    start: int = 0,
    seen: set[str] | None = None,
    mapper: Callable[[Callable[[Any], Slot], Iterator[Any]], Iterator[Slot]] | None = None,
    wording: Wording = TRAIN,
) -> Iterator[Slot]:
    """Yield n slots in index order (each with a kept task unless every attempt failed). Deterministic in the
    arguments, whatever `workers` is; duplicates are detected here, in order, and their slot is regenerated.
    `start` and `seen` resume an interrupted run: slots from `start` on, with the content hashes of the tasks kept
    before it (an interrupted run resumed this way yields exactly the slots an uninterrupted one would).
    `mapper(fn, jobs)`, when given, runs the slots elsewhere and yields their results in order (e.g. on a Ray
    cluster: `agentkit.envs.executors.ray_jobs.ordered_map`); a slot depends on its arguments alone, so the set is
    the same wherever its slots ran. `wording` picks the space the instructions are phrased from
    (`agentkit.envs.wording`): the same seed gives the same tasks in every wording."""
    names = tuple(fams or families())
    unknown = [f for f in names if f not in families()]
    if unknown:
        raise SpecError(f"unknown families {unknown}; available: {', '.join(families())}")
    bad = [d for d in difficulties if d not in MIN_CALLS]
    if bad:
        raise SpecError(f"difficulty must be in 1..5, got {bad}")
    diffs = tuple(difficulties)
    if wording not in WORDINGS:
        raise SpecError(f"wording must be one of {', '.join(WORDINGS)}, got {wording!r}")
    jobs = ((seed, i, names, diffs, wording) for i in range(start, n))
    seen = set(seen or ())
    if mapper is not None:
        yield from _dedup(mapper(_slot_job, jobs), seen, seed, names, diffs, wording)
    elif workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_ignore_sigint) as pool:
            yield from _dedup(pool.imap(_slot_job, jobs, chunksize=16), seen, seed, names, diffs, wording)
    else:
        yield from _dedup(map(_slot_job, jobs), seen, seed, names, diffs, wording)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool: one quiet message instead of a traceback each."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def generate_records(
    n: int,
    seed: int = 0,
    fams: Sequence[str] | None = None,
    difficulties: Sequence[int] = (1, 2, 3, 4, 5),
    workers: int = 1,
    wording: Wording = TRAIN,
) -> list[TaskRecord]:
    """The kept tasks of `generate` as records: what the demo, the benchmarks and most tests want, in one place."""
    slots = generate(n, seed, fams, difficulties, workers, wording=wording)
    return [TaskRecord.from_json(s.line) for s in slots if s.line]


def _dedup(
    slots: Any, seen: set[str], seed: int, names: tuple[str, ...], diffs: tuple[int, ...], wording: Wording,
) -> Iterator[Slot]:
    for slot in slots:
        while slot.content_hash is not None and slot.content_hash in seen:
            prior = slot.discards
            slot = make_slot(seed, slot.index, names, diffs, slot.next_attempt, frozenset(seen), wording)
            slot.discards = prior + slot.discards + Counter({"duplicate": 1})
        if slot.content_hash:
            seen.add(slot.content_hash)
        yield slot
