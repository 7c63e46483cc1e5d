"""The HTML eval report: one self-contained file that opens offline (inline CSS and script, plots as PNG data URIs)
and links every attempt to its transcript, so a failure can be read, not just counted.

Layout, top to bottom: headline figures and the run's configuration (read from the results), pass rates by group,
per-attempt statistics, plots, then every attempt in a table with filters (family, difficulty, outcome, a text
search); each row links to the attempt's transcript: the system prompt (folded), the task, every assistant turn
with its reasoning, tool calls with their arguments and the tool results, the final answer, and the verifier's
full verdict (every failure, the state change the agent made, the error of a run that stopped).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit.envs.metrics import EvalSummary, GroupStats
from agentkit.envs.results import AttemptRecord


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def ci(c: tuple[float, float]) -> str:
    return f"[{100 * c[0]:.0f}, {100 * c[1]:.0f}]"


def group_columns(k: int) -> list[str]:
    """pass@k and pass^k equal pass@1 when k=1: they get columns only when they say something."""
    cols = ["group", "tasks", "attempts", "pass@1", "95% CI"]
    return cols + ([f"pass@{k}", f"pass^{k}"] if k > 1 else [])


def group_cells(name: str, g: GroupStats, k: int) -> list[str]:
    cells = [name, str(g.tasks), str(g.attempts), pct(g.pass1), ci(g.pass1_ci)]
    return cells + ([pct(g.pass_k), pct(g.pass_hat_k)] if k > 1 else [])


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(summary: EvalSummary, records: Sequence[AttemptRecord]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    for title, groups in (("Pass@1 by difficulty", summary.by_difficulty), ("Pass@1 by family", summary.by_family)):
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        names = list(groups)
        values = [100 * g.pass1 for g in groups.values()]
        errs = [[100 * max(g.pass1 - g.pass1_ci[0], 0) for g in groups.values()],
                [100 * max(g.pass1_ci[1] - g.pass1, 0) for g in groups.values()]]  # fmt: skip
        ax.bar(names, values, yerr=errs, color="#4c78a8", capsize=3)
        ax.set_ylim(0, 105)
        ax.set_ylabel("pass@1 (%), 95% Wilson")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30 if len(names) > 5 else 0)
        plots.append((title, _png(fig)))
    scored = [r for r in records if not r.infra]
    for title, values, unit in (
        ("Tokens per attempt", [float(r.total_tokens) for r in scored], "tokens"),
        ("Wall time per attempt", [r.wall_time for r in scored], "seconds"),
    ):
        fig, ax = plt.subplots(figsize=(6.5, 3.0))
        ax.hist(values or [0], bins=30, color="#f58518")
        ax.set_xlabel(unit)
        ax.set_ylabel("attempts")
        ax.set_title(title)
        plots.append((title, _png(fig)))
    return plots


def _table(rows: list[list[str]], head: list[str], attrs: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{attrs}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _pretty_args(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def transcript_html(r: AttemptRecord) -> str:
    """One attempt, readable: every message of the run, then the verdict."""
    e = html.escape
    parts: list[str] = []
    try:
        messages = r.transcript()
    except Exception as exc:  # noqa: BLE001 - a damaged transcript must not hide the rest of the report
        messages = []
        parts.append(f'<p class="err">transcript unreadable: {e(str(exc))}</p>')
    for m in messages:
        role = m.role
        if role == "system":
            parts.append(f'<details class="msg sys"><summary>system prompt</summary><pre>{e(m.content or "")}</pre></details>')
        elif role == "user":
            parts.append(f'<div class="msg user"><b>task</b><pre>{e(str(m.content or ""))}</pre></div>')
        elif role == "assistant":
            inner = ""
            if getattr(m, "reasoning_content", None):
                inner += f'<div class="reason"><b>reasoning</b><pre>{e(m.reasoning_content)}</pre></div>'
            if m.content:
                inner += f'<div class="answer"><b>says</b><pre>{e(m.content)}</pre></div>'
            for c in m.tool_calls or []:
                inner += f'<div class="call"><b>calls {e(c.name)}</b> <span class="id">{e(c.id)}</span><pre>{e(_pretty_args(c.arguments))}</pre></div>'
            if not inner:
                inner = '<p class="err">(empty turn: no text, no tool call)</p>'
            parts.append(f'<div class="msg asst">{inner}</div>')
        elif role == "tool":
            cls = "tool err" if getattr(m, "is_error", False) else "tool"
            parts.append(f'<div class="msg {cls}"><b>result of {e(m.name or "")}</b>{" (error)" if m.is_error else ""}'
                         f"<pre>{e(str(m.content))}</pre></div>")  # fmt: skip
    verdict = "passed" if r.passed else "failed"
    v = [f"<b>verdict: {verdict}</b> · status {e(r.status)}" + (" · infrastructure error (not scored)" if r.infra else "")]
    if r.failures:
        v.append("<ul>" + "".join(f"<li>{e(f)}</li>" for f in r.failures) + "</ul>")
    if r.error:
        v.append(f"<p>error ({e(r.error_type or '')}): {e(r.error)}</p>")
    if r.diff is not None:
        v.append(f"<details><summary>state change made by the agent</summary><pre>{e(json.dumps(r.diff, indent=1, ensure_ascii=False))}</pre></details>")
    v.append(f"<p>final output: <code>{e(r.output or '')}</code></p>")
    parts.append(f'<div class="verdict {verdict}">{"".join(v)}</div>')
    return "".join(parts)


SCRIPT = """
function applyFilters() {
  const f = document.getElementById('f-family').value, d = document.getElementById('f-difficulty').value,
        o = document.getElementById('f-outcome').value, q = document.getElementById('f-text').value.toLowerCase();
  let shown = 0;
  document.querySelectorAll('tr.att').forEach(function (row) {
    const ok = (!f || row.dataset.family === f) && (!d || row.dataset.difficulty === d) &&
               (!o || row.dataset.outcome === o) && (!q || row.dataset.task.toLowerCase().includes(q));
    row.style.display = ok ? '' : 'none';
    const t = document.getElementById(row.dataset.target);
    if (t) t.style.display = ok ? '' : 'none';
    shown += ok;
  });
  document.getElementById('f-count').textContent = shown + ' shown';
}
document.querySelectorAll('.filters select, .filters input').forEach(function (el) {
  el.addEventListener('input', applyFilters);
});
document.querySelectorAll('a.open').forEach(function (a) {
  a.addEventListener('click', function () { const t = document.querySelector(a.getAttribute('href')); if (t) t.open = true; });
});
applyFilters();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
td:first-child, th:first-child { text-align: left; } .big { font-size: 1.4em; }
figure { display: inline-block; margin: 0.5em; } pre { background: #f6f6f6; padding: 0.4em; white-space: pre-wrap; margin: 0.2em 0; }
.filters { position: sticky; top: 0; background: #fff; padding: 0.5em 0; border-bottom: 1px solid #ddd; }
tr.att td { text-align: left; } .passed { color: #176f2c; } .failed { color: #b3261e; } .infra_error, .error { color: #8a5a00; }
details.attempt { border: 1px solid #ddd; margin: 0.6em 0; padding: 0.3em 0.6em; }
.msg { margin: 0.4em 0; padding: 0.2em 0.5em; border-left: 4px solid #ccc; }
.user { border-color: #4c78a8; } .asst { border-color: #54a24b; } .tool { border-color: #999; } .tool.err { border-color: #e45756; }
.reason pre { background: #fbf7e9; font-style: italic; } .call pre { background: #eef4fb; } .id { color: #888; font-size: 0.8em; }
.verdict { border: 2px solid #ccc; padding: 0.4em 0.6em; margin-top: 0.5em; } .verdict.passed { border-color: #54a24b; }
.verdict.failed { border-color: #e45756; } .err { color: #b3261e; }
"""


def render(summary: EvalSummary, records: Sequence[AttemptRecord], config: dict[str, Any] | None = None) -> str:
    e = html.escape
    o, k = summary.overall, summary.k
    config = config if config is not None else summary.config
    groups = [group_cells("all", o, k)]
    for prefix, gs in (("family ", summary.by_family), ("difficulty ", summary.by_difficulty)):
        groups += [group_cells(prefix + n, g, k) for n, g in gs.items()]
    stats = [[n, f"{s['mean']:.4g}", f"{s['p50']:.4g}", f"{s['p95']:.4g}"] for n, s in summary.stats.items()]
    images = "".join(f'<figure><img alt="{e(t)}" src="{src}"><figcaption>{e(t)}</figcaption></figure>'
                     for t, src in _plots(summary, records))  # fmt: skip
    ordered = sorted(records, key=lambda r: (r.outcome == "passed", r.family, r.difficulty, r.task_id, r.attempt))
    rows, blocks = [], []
    for i, r in enumerate(ordered):
        why = r.failures[0] if r.failures else ("" if r.passed else r.error or "")
        rows.append(
            f'<tr class="att" data-family="{e(r.family)}" data-difficulty="{r.difficulty}" data-outcome="{r.outcome}" '
            f'data-task="{e(r.task_id)}" data-target="a{i}"><td><a class="open" href="#a{i}">{e(r.task_id)}</a></td>'
            f"<td>{r.attempt}</td><td>{e(r.family)}</td><td>{r.difficulty}</td><td class=\"{r.outcome}\">{r.outcome}</td>"
            f"<td>{e(r.status)}</td><td>{r.turns}</td><td>{r.total_tokens:,}</td><td>{r.wall_time:.1f}</td><td>{e(why)}</td></tr>"
        )
        blocks.append(f'<details class="attempt" id="a{i}"><summary><b>{e(r.task_id)}</b> attempt {r.attempt} · '
                      f'{e(r.family)} · difficulty {r.difficulty} · <span class="{r.outcome}">{r.outcome}</span></summary>'
                      f"{transcript_html(r)}</details>")  # fmt: skip

    def options(values: list[str]) -> str:
        return '<option value="">all</option>' + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)

    fams = sorted({r.family for r in records})
    diffs = sorted({str(r.difficulty) for r in records}, key=int)
    outcomes = [x for x in ("failed", "passed", "error", "infra_error") if any(r.outcome == x for r in records)]
    heads = ["task", "attempt", "family", "difficulty", "outcome", "status", "turns", "tokens", "time s", "first reason"]
    statuses = " · ".join(f"{e(s)}: {n}" for s, n in summary.statuses.items())
    extra = f" · pass@{k} {pct(o.pass_k)} · pass^{k} {pct(o.pass_hat_k)}" if k > 1 else ""
    infra = (f'<p class="err"><b>{summary.infra_errors} attempt(s) ended on infrastructure errors</b> and are not '
             "scored; re-run them with <code>--retry-errors</code>.</p>") if summary.infra_errors else ""  # fmt: skip
    cfg_rows = [[str(key), json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v] for key, v in (config or {}).items()]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentkit eval report</title>
<style>{STYLE}</style></head><body>
<h1>agentkit eval report</h1>
<p class="big">pass@1 <b>{pct(o.pass1)}</b> (95% CI {ci(o.pass1_ci)}){extra}
· {o.tasks} tasks × k={k} · ${summary.total_cost:.4f} · {summary.total_tokens:,} tokens</p>
<p>statuses: {statuses}</p>{infra}
{"<p><b>" + e(summary.stopped) + "</b></p>" if summary.stopped else ""}
<h2>Run configuration</h2>{_table(cfg_rows, ["setting", "value"]) if cfg_rows else "<p>(none recorded)</p>"}
<h2>Pass rates</h2>{_table(groups, group_columns(k))}
<h2>Per attempt</h2>{_table(stats, ["metric", "mean", "p50", "p95"])}
<h2>Plots</h2>{images}
<h2 id="attempts">Attempts ({len(records)})</h2>
<div class="filters">family <select id="f-family">{options(fams)}</select>
difficulty <select id="f-difficulty">{options(diffs)}</select>
outcome <select id="f-outcome">{options(outcomes)}</select>
task <input id="f-text" type="search" placeholder="task id"> <span id="f-count"></span></div>
<table id="attempt-table"><thead><tr>{"".join(f"<th>{h}</th>" for h in heads)}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Transcripts</h2>
{"".join(blocks)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_html(path: str | Path, summary: EvalSummary, records: Sequence[AttemptRecord], *, config: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    page = render(summary, records, config)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
