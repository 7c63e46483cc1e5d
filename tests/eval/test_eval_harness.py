"""The eval harness against real HTTP servers: an oracle (100%), a lazy model (0%), a flaky one (recorded, not fatal),
resume after SIGKILL, the summary maths, compare, and the HTML report."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.eval import (
    AttemptRecord,
    ResultsStore,
    compare,
    default_agent_factory,
    evaluate,
    load_results,
    needs_python,
    pass_at_k,
    pass_hat_k,
    summarize,
)
from agentkit.envs.generator import generate_records
from agentkit.envs.report import write_html
from agentkit.envs.spec import TaskRecord, write_jsonl
from agentkit.testing.oracle import flaky_script, lazy_script, oracle_script

ROOT = Path(__file__).resolve().parents[2]


def make_tasks(n: int, seed: int, *, python: bool = False) -> list[TaskRecord]:
    recs = generate_records(n, seed=seed, difficulties=(1, 2, 3))
    return [r for r in recs if needs_python(r) == python]


@pytest.fixture(scope="module")
def tasks() -> list[TaskRecord]:
    return make_tasks(40, seed=11)


def backend_for(srv, **kw) -> RemoteBackend:
    return RemoteBackend("vllm", "oracle", base_url=srv.base_url, backoff_base=0.01, **kw)


async def test_oracle_scores_100_and_lazy_scores_0(serve, tasks, tmp_path) -> None:
    assert len({t.task.family for t in tasks}) >= 8
    srv = serve(oracle_script(tasks))
    async with backend_for(srv) as be:
        summary = await evaluate(default_agent_factory(be), tasks, k=2, concurrency=8, out=tmp_path / "oracle.jsonl")
    assert summary.attempts == 2 * len(tasks) and summary.errors == 0
    failing = [r for r in load_results(tmp_path / "oracle.jsonl") if not r.passed]
    assert summary.pass1 == 1.0, failing[:3]
    assert summary.overall.pass_k == 1.0 and summary.overall.pass_hat_k == 1.0
    rec = load_results(tmp_path / "oracle.jsonl")[0]
    assert rec.turns >= 2 and rec.tool_calls >= 1 and rec.prompt_tokens > 0
    transcript = rec.transcript()
    assert transcript[1].role == "user" and transcript[-1].role == "assistant"
    assert all(g.pass1 == 1.0 for g in summary.by_family.values())

    srv = serve(lazy_script)
    async with backend_for(srv) as be:
        lazy = await evaluate(default_agent_factory(be), tasks, k=1, concurrency=8)
    assert lazy.pass1 == 0.0 and lazy.overall.tasks == len(tasks)
    assert lazy.stats["turns"]["mean"] == 1.0


async def test_flaky_server_is_recorded_not_fatal(serve, tasks) -> None:
    srv = serve(flaky_script(tasks))
    async with backend_for(srv, max_retries=0) as be:
        summary = await evaluate(default_agent_factory(be), tasks[:15], k=1, concurrency=4)
    assert summary.attempts == 15  # every attempt has a record
    assert summary.errors > 0 and summary.infra_errors == summary.statuses.get("infra_error", 0) > 0
    assert summary.errors == summary.statuses.get("error", 0) + summary.infra_errors
    # errors are not outcomes: the 500s are left out of pass@1, which is over the attempts that ran to the end
    assert summary.overall.attempts == 15 - summary.infra_errors and summary.pass1 == 1.0


async def test_crashing_agent_factory_is_an_error_record(tasks) -> None:
    def broken(episode):
        raise RuntimeError("factory exploded")

    summary = await evaluate(broken, tasks[:3], k=1)
    assert summary.errors == 3 and summary.pass1 == 0.0


@pytest.mark.docker
async def test_python_family_runs_in_the_sandbox(serve) -> None:
    tasks = make_tasks(40, seed=3, python=True)[:3]
    assert tasks, "the generator should yield data-analysis tasks"
    srv = serve(oracle_script(tasks))
    async with backend_for(srv) as be:
        summary = await evaluate(default_agent_factory(be), tasks, k=1, concurrency=2)
    assert summary.pass1 == 1.0, summary.statuses


async def test_budget_stops_early_with_a_message(serve, tasks) -> None:
    srv = serve(oracle_script(tasks))
    from agentkit.pricing import ModelPrice

    async with backend_for(srv) as be:
        factory = default_agent_factory(be)

        def priced(episode):
            agent = factory(episode)
            agent.pricing = {"oracle": ModelPrice(input_cache_miss=1000.0, output=1000.0)}
            return agent

        summary = await evaluate(priced, tasks, k=1, concurrency=1, max_cost=1.0)
    assert summary.attempts < len(tasks) and "max-cost" in (summary.stopped or "")


def test_metrics() -> None:
    assert pass_at_k(5, 0, 1) == 0.0 and pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # C(3,2)/C(4,2)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    recs = [AttemptRecord("a", i, "f", 1, passed=p, status="completed") for i, p in enumerate([True, True])]
    recs += [AttemptRecord("b", i, "g", 2, passed=p, status="completed") for i, p in enumerate([True, False])]
    s = summarize(recs, k=2)
    assert s.pass1 == pytest.approx(0.75) and s.overall.pass_k == pytest.approx(1.0)
    assert s.overall.pass_hat_k == pytest.approx(0.5)
    assert s.by_family["g"].pass1 == 0.5 and s.by_difficulty["1"].pass_hat_k == 1.0
    cmp = compare(recs, [AttemptRecord("a", 0, "f", 1, passed=False, status="completed"),
                         AttemptRecord("b", 0, "g", 2, passed=True, status="completed")])  # fmt: skip
    assert cmp.lost == ["a"] and cmp.gained == []  # b was 50% (majority pass) in A, passes in B: no flip


def test_torn_last_line_is_repaired(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    rec = AttemptRecord("t1", 0, "f", 1, passed=True, status="completed")
    with ResultsStore(path).open({"config": {}}) as f:
        f.append(rec)
    with path.open("a") as g:
        g.write('{"kind": "attempt", "task_id": "t2", "att')  # a writer killed mid-line
    before = path.read_bytes()
    loaded = ResultsStore(path).read()
    assert loaded.header["config"] == {} and [r.task_id for r in loaded.records] == ["t1"]
    assert [p.line for p in loaded.problems] == [3] and "incomplete" in loaded.problems[0].reason
    assert path.read_bytes() == before  # reading never writes
    with ResultsStore(path).open({"config": {}}) as f:  # the next writer ends the torn line first
        f.append(AttemptRecord("t3", 0, "f", 1, passed=True, status="completed"))
    loaded = ResultsStore(path).read()
    assert [r.task_id for r in loaded.records] == ["t1", "t3"] and [p.line for p in loaded.problems] == [3]


def test_resume_after_sigkill_gives_the_same_summary(tmp_path, tasks) -> None:
    """Kill a CLI eval mid-run, re-run the same command: the final summary equals an uninterrupted run's."""
    subset = tasks[:24]
    task_file = tmp_path / "tasks.jsonl"
    write_jsonl(task_file, subset)
    server = subprocess.Popen([sys.executable, "-m", "agentkit.testing.oracle", str(task_file), "0.05"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        env = {**os.environ, "VLLM_BASE_URL": base_url}
        cmd = [sys.executable, "-m", "agentkit.app.cli", "eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle",
               "--concurrency", "3", "--k", "2", "--no-report"]  # fmt: skip
        out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        victim = subprocess.Popen([*cmd, "--out", str(out_a)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out_a.exists() or len(out_a.read_text().splitlines()) < 8):
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        partial = load_results(out_a)
        assert 6 <= len(partial) < 48, len(partial)
        for out in (out_a, out_b):
            done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
    finally:
        server.kill()
    a, b = load_results(out_a), load_results(out_b)
    assert sorted(r.key for r in a) == sorted(r.key for r in b) and len(a) == 48
    sa, sb = summarize(a, k=2), summarize(b, k=2)
    assert sa.overall == sb.overall and sa.by_family == sb.by_family and sa.pass1 == 1.0
    summary_json = json.loads((tmp_path / "a.summary.json").read_text())
    assert summary_json["overall"]["pass1"] == 1.0 and summary_json["config"]["model"] == "oracle"


def test_resume_refuses_another_configuration(tmp_path, tasks) -> None:
    import asyncio

    out = tmp_path / "r.jsonl"
    ResultsStore(out).open({"config": {"model": "a"}}).close()
    from agentkit.envs.eval import EvalError

    with pytest.raises(EvalError, match="another configuration"):
        asyncio.run(evaluate(lambda e: None, tasks[:1], out=out, config={"model": "b"}))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_html_report_opens(tmp_path) -> None:
    recs = [AttemptRecord(f"t{i}", 0, f"fam{i % 3}", 1 + i % 4, passed=i % 2 == 0, status="completed", turns=2 + i,
                          prompt_tokens=100 * i, wall_time=0.1 * i, failures=[] if i % 2 == 0 else ["balance is 5, expected 7"])
            for i in range(12)]  # fmt: skip
    path = write_html(tmp_path / "report.html", summarize(recs), recs, config={"model": "m"})
    parser = _Collect()
    parser.feed(path.read_text())
    assert "table" in parser.tags and len(parser.images) == 4
    assert "script" in parser.tags and "<link" not in path.read_text() and "http" not in path.read_text()
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "balance is 5, expected 7" in path.read_text()
