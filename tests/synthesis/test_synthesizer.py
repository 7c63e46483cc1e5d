"""The synthesizer end to end: a ScriptedServer replays a realistic synthesis conversation (code written into the
sandbox, run, fixed; a verifier repaired after a failed check; a harder task with a new tool), every gate runs for
real, and the kept tasks are scored by `agentkit eval` like generated ones."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit.envs.cli import main as envs_main
from agentkit.envs.eval import load_tasks
from agentkit.envs.packages import Package, is_package_record
from agentkit.envs.packages.categories import STARTER_CATEGORIES
from agentkit.testing.synthesis_script import synthesis_script

pytestmark = pytest.mark.docker


def test_starter_list_has_at_least_50_distinct_categories() -> None:
    assert len(set(STARTER_CATEGORIES)) == len(STARTER_CATEGORIES) >= 50


def test_synthesize_two_categories_then_resume(serve, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "test")
    srv = serve(synthesis_script, enforce="deepseek-v4")
    cats = tmp_path / "cats.txt"
    cats.write_text("# two categories\ntrip planning\nflight booking\n")
    out = tmp_path / "synth"
    argv = ["synthesize", "--categories", str(cats), "--provider", "deepseek", "--model", "deepseek-v4-flash",
            "--base-url", srv.base_url, "--n", "2", "--out", str(out), "--concurrency", "2"]
    assert envs_main(argv) == 0
    said = capsys.readouterr().out
    assert "4 task(s) kept from 2 categories" in said and "per kept task" in said
    tasks = load_tasks(out / "tasks.jsonl")
    assert len(tasks) == 4 and all(is_package_record(t) for t in tasks)
    assert {t.task.family for t in tasks} == {"pkg.trip-planning", "pkg.flight-booking"}
    pkg = Package.load(out / "packages" / "trip-planning")
    assert pkg.category == "trip planning" and [t.id for t in pkg.tasks] == ["book-cheapest", "jon-total"]
    events = [json.loads(line) for line in (out / "logs" / "trip-planning.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds.count("run_python") == 2 and "agent_done" in kinds
    checks = [e for e in events if e["event"] == "check"]
    assert checks[0]["outcomes"][0]["reason"] == "verifier_error"  # repaired on the next turn
    assert [e["task"] for e in events if e["event"] == "kept"] == ["book-cheapest", "jon-total"]
    done = json.loads((out / "done" / "trip-planning.json").read_text())
    assert done["kept"] == 2 and done["prompt_tokens"] > 0 and done["cost"] > 0

    served = len(srv.requests)
    assert envs_main(argv) == 0  # resume: nothing left to do, no request made
    assert len(srv.requests) == served and len(load_tasks(out / "tasks.jsonl")) == 4


def test_eval_cli_scores_the_oracle_100_on_synthesized_tasks(serve, tmp_path: Path, monkeypatch) -> None:
    """`agentkit eval` takes the synthesized task set like a generated one (a sandbox per package attempt)."""
    from agentkit.app.cli import main as agentkit_main
    from agentkit.envs.spec import write_jsonl
    from agentkit.testing.oracle import oracle_script

    tasks = _synthesized(serve, tmp_path, monkeypatch)
    write_jsonl(tmp_path / "t.jsonl", tasks)
    srv = serve(oracle_script(tasks))
    rc = agentkit_main(["eval", "--tasks", str(tmp_path / "t.jsonl"), "--provider", "vllm", "--model", "oracle", "--base-url",
                    srv.base_url, "--k", "1", "--out", str(tmp_path / "r.jsonl")])
    assert rc == 0
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines() if '"task_id"' in line]
    assert len(rows) == len(tasks) and all(r["passed"] for r in rows)


@pytest.mark.torch
def test_shipped_local_model_runs_on_synthesized_tasks(serve, tmp_path: Path, monkeypatch) -> None:
    """The shipped local model through the eval harness: every attempt completes as an outcome, none as an error."""
    from agentkit.backends.local.shipped import shipped_backend
    from agentkit.envs.eval import evaluate
    from agentkit.sandbox import SandboxPool
    from agentkit.training.agent import agent_factory

    tasks = _synthesized(serve, tmp_path, monkeypatch)

    async def run() -> Any:
        async with SandboxPool(size=1) as pool:
            return await evaluate(agent_factory(shipped_backend()), tasks, k=1, concurrency=1, sandbox_pool=pool)

    summary = asyncio.run(run())
    assert summary.attempts == len(tasks) and summary.errors == 0


def _synthesized(serve, tmp_path: Path, monkeypatch) -> list:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "test")
    srv = serve(synthesis_script, enforce="deepseek-v4")
    out = tmp_path / "s"
    assert envs_main(["synthesize", "--category", "trip planning", "--base-url", srv.base_url, "--n", "2",
                      "--out", str(out)]) == 0
    return load_tasks(out / "tasks.jsonl")


def test_synthesize_needs_a_category(tmp_path: Path, capsys) -> None:
    assert envs_main(["synthesize", "--out", str(tmp_path)]) == 2
    assert "--category" in capsys.readouterr().err


async def test_interrupted_category_resumes_from_its_kept_tasks(serve, tmp_path: Path) -> None:
    """Interrupted after the first kept task: the re-run seeds its workbench with the package kept so far and asks
    the model only for what is missing, so nothing that was kept is requested again."""
    import threading

    from agentkit.backends.remote import RemoteBackend
    from agentkit.envs.packages.synthesizer import synthesize
    from agentkit.testing.synthesis_script import RESUME_AT

    reached, release = threading.Event(), threading.Event()

    def interrupted(body: dict[str, Any]) -> Any:
        done = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        resumed = any("Resumed:" in (m.get("content") or "") for m in body["messages"] if m.get("role") == "user")
        if not resumed and done == RESUME_AT:  # the reply after the check that kept jon-total: stop here
            reached.set()
            release.wait(30)
        return synthesis_script(body)

    srv = serve(interrupted, enforce="deepseek-v4")
    out = tmp_path / "synth"
    async with RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="test") as model:
        run = asyncio.create_task(synthesize(model, ["trip planning"], out))
        assert await asyncio.to_thread(reached.wait, 60)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        release.set()
        assert not (out / "done" / "trip-planning.json").exists()
        assert json.loads((out / "progress" / "trip-planning.json").read_text()) == ["jon-total"]
        first = len(srv.requests)
        [res] = await synthesize(model, ["trip planning"], out)
    again = srv.requests[first:]
    assert res.status == "done" and res.kept == 2
    assert len(again) == 16 - RESUME_AT  # only the steps after the kept task: no data, tools or jon-total again
    assert "Resumed:" in again[0]["messages"][1]["content"] and "jon-total" in again[0]["messages"][1]["content"]
    events = [json.loads(line) for line in (out / "logs" / "trip-planning.jsonl").read_text().splitlines()]
    assert [e["kept"] for e in events if e["event"] == "resume"] == [["jon-total"]]
    assert len(load_tasks(out / "tasks.jsonl")) == 2
