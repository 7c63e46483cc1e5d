"""Errors are not outcomes: infrastructure failures are marked, kept out of the pass figures, retried on request,
and make the exit code non-zero; a pre-flight request catches a wrong URL before any attempt."""

from __future__ import annotations

import socket
import time

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.attempt import default_agent_factory
from agentkit.envs.eval import evaluate
from agentkit.envs.results import ResultsStore
from agentkit.testing.oracle import oracle_script
from agentkit.testing.scripted_server import Fail, Reply


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_wrong_url_fails_the_preflight_before_any_attempt(cli, task_file, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    code = cli("eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "m",
               "--base-url", f"http://127.0.0.1:{_closed_port()}/v1", "--out", str(out), "--no-report")  # fmt: skip
    assert code == 1 and time.monotonic() - started < 15
    assert "pre-flight" in capsys.readouterr().err
    assert not ResultsStore(out).read().records


def test_infra_errors_are_marked_retried_and_exit_nonzero(cli, serve, task_file, small_tasks, tmp_path, capsys) -> None:
    out = tmp_path / "r.jsonl"
    config = {"provider": "vllm", "model": "oracle", "thinking": None, "max_turns": 20, "tasks": task_file.name}
    oracle = oracle_script(small_tasks)
    broken = {t.task.instruction for t in small_tasks[:5]}

    def half_down(body):  # the server fails every request of five tasks (a 503 that outlasts the retries)
        users = [m for m in body["messages"] if m["role"] == "user"]
        return Fail(503, "overloaded") if users and users[-1]["content"] in broken else oracle(body)

    srv = serve(half_down)
    import asyncio

    async def first_run():
        async with RemoteBackend("vllm", "oracle", base_url=srv.base_url, max_retries=0) as be:
            return await evaluate(default_agent_factory(be), small_tasks, out=out, config=config)

    summary = asyncio.run(first_run())
    assert summary.infra_errors == 5 and summary.statuses["infra_error"] == 5
    assert summary.pass1 == 1.0 and summary.overall.attempts == len(small_tasks) - 5  # not counted as failures
    recs = ResultsStore(out).read().records
    assert sorted(r.task_id for r in recs if r.infra) == sorted(t.task.task_id for t in small_tasks[:5])
    assert all(r.error_type == "ServerError" for r in recs if r.infra)

    srv2 = serve(lambda body: Fail(503, "still overloaded") if body["messages"][-1]["content"].startswith("Reply with")
                 else oracle(body))  # fmt: skip
    base = ["eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle", "--out", str(out), "--no-report"]
    capsys.readouterr()
    # a plain re-run keeps the errors (and says so in its exit code), but its pre-flight now fails first
    assert cli(*base, "--base-url", srv2.base_url) == 1
    assert "pre-flight" in capsys.readouterr().err

    srv3 = serve(oracle)
    assert cli(*base, "--base-url", srv3.base_url) == 1  # resumed, nothing to run, errors remain
    err_out = capsys.readouterr().out
    assert "infrastructure errors: 5" in " ".join(err_out.split()) and "--retry-errors" in err_out
    before = len(srv3.requests)
    assert cli(*base, "--base-url", srv3.base_url, "--retry-errors") == 0
    steps = sum(len(t.solution.calls) + 1 for t in small_tasks[:5])
    assert len(srv3.requests) - before == steps + 1  # exactly those five attempts, plus the pre-flight
    loaded = ResultsStore(out).read()
    assert not any(r.infra for r in loaded.records) and all(r.passed for r in loaded.records)
    assert loaded.lines == len(small_tasks) + 5  # the error lines stay in the file; the new ones supersede them


def test_an_empty_final_turn_is_its_own_status(serve, small_tasks) -> None:
    import asyncio

    srv = serve(lambda body: Reply(reasoning="hmm", content=""))

    async def go():
        async with RemoteBackend("vllm", "m", base_url=srv.base_url) as be:
            return await evaluate(default_agent_factory(be), small_tasks[:4])

    s = asyncio.run(go())
    assert s.statuses == {"empty_reply": 4} and s.pass1 == 0.0
