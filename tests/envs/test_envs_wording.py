"""Wording: the same tasks under many phrasings, a held-out part of them never written by default."""

from __future__ import annotations

import json
import random
import re

import pytest

from agentkit.envs import wording as W
from agentkit.envs.generator import check_task, generate_records
from agentkit.envs.spec import TaskRecord

N = 120


@pytest.fixture(scope="module")
def sets() -> dict[str, list[TaskRecord]]:
    return {w: generate_records(N, seed=31, difficulties=(1, 2, 3), wording=w) for w in W.WORDINGS}


def _same_task(a: TaskRecord, b: TaskRecord) -> bool:
    return (a.task.task_id == b.task.task_id and a.environment.to_dict() == b.environment.to_dict()
            and a.solution.to_dict() == b.solution.to_dict() and a.verifier.to_dict() == b.verifier.to_dict())


def test_every_wording_holds_the_same_tasks(sets: dict[str, list[TaskRecord]]) -> None:
    template, train, heldout = sets["template"], sets["train"], sets["heldout"]
    assert len(template) == len(train) == len(heldout) == N
    for t, a, b in zip(template, train, heldout, strict=True):
        assert _same_task(t, a) and _same_task(t, b)
        assert a.meta.get("instruction_template", a.task.instruction) == t.task.instruction


def test_rewordings_vary_and_pass_the_generator_checks(sets: dict[str, list[TaskRecord]]) -> None:
    template = [r.task.instruction for r in sets["template"]]
    for name in ("train", "heldout"):
        texts = [r.task.instruction for r in sets[name]]
        changed = sum(a != b for a, b in zip(template, texts, strict=True))
        assert changed >= 0.85 * N, (name, changed)
        for rec in sets[name][:40]:
            assert check_task(rec) is None, rec.task.instruction


def test_rewording_keeps_names_numbers_paths_and_titles(sets: dict[str, list[TaskRecord]]) -> None:
    for name in ("train", "heldout"):
        for t, r in zip(sets["template"], sets[name], strict=True):
            assert W._keeps(t.task.instruction, r.task.instruction), (t.task.instruction, r.task.instruction)


def test_held_out_phrasings_never_appear_in_training_wording() -> None:
    """Each held-out greeting, sign-off, list header and phrase alternative is absent from a large training set."""
    train = "\n".join(r.task.instruction for r in generate_records(600, seed=32, difficulties=(1, 2, 3)))
    exclusive = [o.strip() for o in W.OPENERS["heldout"] + W.CLOSERS["heldout"] + W.HEADERS["heldout"]
                 if o.strip() and o.strip() not in train]
    assert len(exclusive) == len([o for o in W.OPENERS["heldout"] + W.CLOSERS["heldout"] + W.HEADERS["heldout"]
                                  if o.strip()])
    for point in W.PHRASES:
        for alt in point.heldout:
            pattern = ".+?".join(re.escape(part) for part in re.split(r"\\\d", alt))
            assert re.search(pattern, train) is None, alt


def test_template_wording_is_the_family_sentence() -> None:
    text = "How many different titles by Esme Arden are in the catalogue?"
    assert W.reword(text, random.Random(1), "template") == text
    with pytest.raises(ValueError, match="wording must be one of"):
        W.reword(text, random.Random(1), "other")  # type: ignore[arg-type]


def test_a_rewrite_that_would_drop_a_name_falls_back_to_the_template() -> None:
    text = "How many different titles by Esme Arden are in the catalogue?"
    outs = {W.reword(text, random.Random(s), "heldout") for s in range(40)}
    assert all("Esme Arden" in o for o in outs)
    assert len(outs) > 10
    assert not W._keeps(text, "How many distinct titles by Esme are in the catalogue?")


def test_wording_survives_a_round_trip_and_the_cli(tmp_path, capsys) -> None:
    from agentkit.envs.cli import main

    out = tmp_path / "h.jsonl"
    assert main(["generate", "--n", "6", "--seed", "5", "--wording", "heldout", "--out", str(out)]) == 0
    recs = [TaskRecord.from_json(line) for line in out.read_text().splitlines()]
    assert len(recs) == 6 and all(r.meta.get("wording") in (None, "heldout") for r in recs)
    assert any(r.meta.get("wording") == "heldout" for r in recs)
    assert json.loads(out.read_text().splitlines()[0])["meta"]["instruction_template"]
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--n", "2", "--wording", "people", "--out", str(tmp_path / "x.jsonl")])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
