"""Reports that know the run and figures that do not mislead: transcripts in the HTML report with filters, progress
with an ETA when not on a terminal, Wilson intervals, no duplicate columns, defaults from the backend."""

from __future__ import annotations

import asyncio
import html
import re
from html.parser import HTMLParser

import pytest

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.attempt import default_agent_factory
from agentkit.envs.eval import evaluate, load_results, summarize, wilson
from agentkit.envs.report import summary_table, write_html
from agentkit.envs.results import AttemptRecord
from agentkit.testing.oracle import lazy_script, oracle_script


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.ids: set[str] = set()
        self.external: list[str] = []
        self.selects: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "tr" and "att" in (a.get("class") or ""):
            self.rows.append(a)
        if tag in ("script", "img", "link") and (a.get("src") or a.get("href") or "").startswith(("http", "//")):
            self.external.append(a.get("src") or a.get("href"))
        if tag == "select":
            self._select = a["id"]
            self.selects[self._select] = []
        if tag == "option" and self._select:
            self.selects[self._select].append(a["value"])


def test_html_report_has_every_transcript_and_filters(serve, small_tasks, tmp_path) -> None:
    srv = serve(oracle_script(small_tasks[:6]))  # the other tasks get "I do not know this task": failures
    out = tmp_path / "r.jsonl"

    async def go():
        async with RemoteBackend("vllm", "oracle", base_url=srv.base_url) as be:
            return await evaluate(default_agent_factory(be), small_tasks, k=2, out=out)

    summary = asyncio.run(go())
    records = load_results(out)
    path = write_html(tmp_path / "r.html", summary, records, config={"model": "oracle", "max_turns": 20})
    text = path.read_text()
    page = _Page()
    page.feed(text)
    assert not page.external and "<link" not in text  # opens offline: nothing to fetch
    assert len(page.rows) == len(records) == 2 * len(small_tasks)
    for row in page.rows:  # every attempt links to its transcript
        assert row["data-target"] in page.ids
    assert set(page.selects["f-family"][1:]) == {t.task.family for t in small_tasks}
    assert set(page.selects["f-outcome"][1:]) == {"passed", "failed"}
    assert page.selects["f-difficulty"][0] == "" and "1" in page.selects["f-difficulty"]
    solved = small_tasks[0]
    call = solved.solution.calls[0]
    assert f"calls {call.tool}" in text and html.escape(call.thought or "Step 1.") in text  # calls and reasoning
    assert "result of " + call.tool in text  # tool results
    failing = next(r for r in records if not r.passed)
    for reason in failing.failures:  # the verifier's full verdict, uncut
        assert html.escape(reason) in text
    assert "state change made by the agent" in text and "applyFilters" in text


def test_progress_lines_with_an_eta_when_not_a_terminal(cli, serve, task_file, small_tasks, tmp_path, capsys) -> None:
    srv = serve(oracle_script(small_tasks), latency=0.02)
    code = cli("eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle", "--base-url", srv.base_url,
               "--out", str(tmp_path / "r.jsonl"), "--concurrency", "2", "--progress-every", "0.05", "--no-report")  # fmt: skip
    assert code == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("eval ")]
    assert len(lines) >= 3, lines
    assert re.search(r"eval \d+/12 \(\d+%\) · pass 100\.0% .* attempts/s · ETA \d+", lines[0])
    assert lines[-1].startswith("eval 12/12 (100%)")


def test_wilson_intervals_are_right_at_the_edges() -> None:
    lo, hi = wilson(0.0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)  # 0 of 10 is not [0, 0]
    lo, hi = wilson(1.0, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-3)
    recs = [AttemptRecord(f"t{i}", 0, "f", 1, passed=False, status="completed") for i in range(10)]
    assert summarize(recs).overall.pass1_ci[1] > 0.25


def test_no_duplicate_columns_with_k_1() -> None:
    recs = [AttemptRecord("a", 0, "f", 1, passed=True, status="completed")]
    cols = [c.header for c in summary_table(summarize(recs, k=1)).columns]
    assert cols.count("pass@1") == 1 and not any(c.startswith("pass^") for c in cols)
    cols2 = [c.header for c in summary_table(summarize(recs * 2, k=2)).columns]
    assert "pass@2" in cols2 and "pass^2" in cols2


def test_max_turns_default_comes_from_the_backend(serve, small_tasks) -> None:
    srv = serve(lazy_script)

    class Trained(RemoteBackend):
        agent_defaults = {"max_turns": 7, "system_prompt": "trained prompt"}

    backend = Trained("vllm", "m", base_url=srv.base_url)
    from agentkit.envs.runtime import Episode

    agent = default_agent_factory(backend)(Episode(small_tasks[0]))
    assert agent.max_turns == 7 and agent.system_prompt == "trained prompt"
    assert default_agent_factory(backend, max_turns=3)(Episode(small_tasks[0])).max_turns == 3
    plain = default_agent_factory(RemoteBackend("vllm", "m", base_url=srv.base_url))(Episode(small_tasks[0]))
    assert plain.max_turns == 20
