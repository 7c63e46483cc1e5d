"""Eval output for people: a rich table in the terminal and a one-page HTML report that opens offline.

The HTML embeds its plots as PNG data URIs (matplotlib, Agg backend), so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentkit.envs.eval import AttemptRecord, Comparison, EvalSummary, GroupStats


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(ci: tuple[float, float]) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def summary_table(summary: EvalSummary, title: str = "Eval summary") -> Table:
    k = summary.k
    o = summary.overall
    t = Table(title=title)
    for col in ("group", "tasks", "attempts", "pass@1", "95% CI", f"pass@{k}", f"pass^{k}"):
        t.add_column(col, justify="left" if col == "group" else "right")

    def row(name: str, g: GroupStats, style: str | None = None) -> None:
        t.add_row(name, str(g.tasks), str(g.attempts), _pct(g.pass1), _ci(g.pass1_ci), _pct(g.pass_k),
                  _pct(g.pass_hat_k), style=style)  # fmt: skip

    row("all", o, "bold")
    for name, g in summary.by_family.items():
        row(f"family {name}", g)
    for name, g in summary.by_difficulty.items():
        row(f"difficulty {name}", g)
    return t


def stats_table(summary: EvalSummary) -> Table:
    t = Table(title="Per attempt")
    for col in ("metric", "mean", "p50", "p95"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for name, s in summary.stats.items():
        fmt = "{:.5f}" if name == "cost" else "{:.2f}" if name == "wall_time" else "{:.1f}"
        t.add_row(name, fmt.format(s["mean"]), fmt.format(s["p50"]), fmt.format(s["p95"]))
    return t


def print_summary(summary: EvalSummary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(summary))
    console.print(stats_table(summary))
    statuses = ", ".join(f"{k}: {v}" for k, v in summary.statuses.items())
    console.print(
        f"statuses: {statuses} · total tokens {summary.total_tokens:,} · total cost ${summary.total_cost:.4f}"
        + (f" · [yellow]{summary.stopped}[/]" if summary.stopped else "")
    )


def print_comparison(cmp: Comparison, names: tuple[str, str], console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=f"{names[0]} vs {names[1]} ({cmp.a.tasks} common tasks)")
    for col in ("", names[0], names[1], "change"):
        t.add_column(col, justify="left" if not col else "right")
    a, b = cmp.a, cmp.b
    t.add_row("pass@1", _pct(a.pass1), _pct(b.pass1), f"{100 * (b.pass1 - a.pass1):+.1f} pts")
    t.add_row(f"pass^{a.k}", _pct(a.overall.pass_hat_k), _pct(b.overall.pass_hat_k),
              f"{100 * (b.overall.pass_hat_k - a.overall.pass_hat_k):+.1f} pts")  # fmt: skip
    for key, label in (("turns", "mean turns"), ("tokens", "mean tokens"), ("cost", "mean cost $"), ("wall_time", "mean time s")):
        x, y = a.stats[key]["mean"], b.stats[key]["mean"]
        ratio = f"{y / x:.2f}x" if x else "-"
        t.add_row(label, f"{x:.4g}", f"{y:.4g}", ratio)
    console.print(t)
    console.print(f"flipped to pass ({len(cmp.gained)}): {', '.join(cmp.gained) or '-'}")
    console.print(f"flipped to fail ({len(cmp.lost)}): {', '.join(cmp.lost) or '-'}")


# --------------------------------------------------------------------------------------------------------------------
# HTML


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
        errs = [[100 * (g.pass1 - g.pass1_ci[0]) for g in groups.values()], [100 * (g.pass1_ci[1] - g.pass1) for g in groups.values()]]
        ax.bar(names, values, yerr=errs, color="#4c78a8", capsize=3)
        ax.set_ylim(0, 105)
        ax.set_ylabel("pass@1 (%)")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30 if len(names) > 5 else 0)
        plots.append((title, _png(fig)))
    for title, values, unit in (
        ("Tokens per attempt", [float(r.total_tokens) for r in records], "tokens"),
        ("Wall time per attempt", [r.wall_time for r in records], "seconds"),
    ):
        fig, ax = plt.subplots(figsize=(6.5, 3.0))
        ax.hist(values or [0], bins=30, color="#f58518")
        ax.set_xlabel(unit)
        ax.set_ylabel("attempts")
        ax.set_title(title)
        plots.append((title, _png(fig)))
    return plots


def write_html(path: str | Path, summary: EvalSummary, records: Sequence[AttemptRecord], *, config: dict[str, Any] | None = None) -> Path:
    """One self-contained page: headline figures, tables, plots, and the failed attempts with their reasons."""
    path = Path(path)
    o = summary.overall
    k = summary.k

    def table(rows: list[list[str]], head: list[str]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    groups = [["all", str(o.tasks), str(o.attempts), _pct(o.pass1), _ci(o.pass1_ci), _pct(o.pass_k), _pct(o.pass_hat_k)]]
    for prefix, gs in (("family ", summary.by_family), ("difficulty ", summary.by_difficulty)):
        groups += [[prefix + n, str(g.tasks), str(g.attempts), _pct(g.pass1), _ci(g.pass1_ci), _pct(g.pass_k), _pct(g.pass_hat_k)] for n, g in gs.items()]
    stats = [[n, f"{s['mean']:.4g}", f"{s['p50']:.4g}", f"{s['p95']:.4g}"] for n, s in summary.stats.items()]
    failed = [[r.task_id, str(r.attempt), r.family, str(r.difficulty), r.status, "; ".join(r.failures)[:300]]
              for r in records if not r.passed][:200]  # fmt: skip
    images = "".join(f'<figure><img alt="{html.escape(t)}" src="{src}"><figcaption>{html.escape(t)}</figcaption></figure>' for t, src in _plots(summary, records))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentkit eval report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }} .big {{ font-size: 1.4em; }}
figure {{ display: inline-block; margin: 0.5em; }} pre {{ background: #f6f6f6; padding: 0.5em; }}
</style></head><body>
<h1>agentkit eval report</h1>
<p class="big">pass@1 <b>{_pct(o.pass1)}</b> (95% CI {_ci(o.pass1_ci)}) · pass@{k} {_pct(o.pass_k)} · pass^{k} {_pct(o.pass_hat_k)}
· {o.tasks} tasks × {k} attempts · ${summary.total_cost:.4f} · {summary.total_tokens:,} tokens</p>
<pre>{html.escape(json.dumps(config or {}, indent=1))}</pre>
{"<p><b>" + html.escape(summary.stopped) + "</b></p>" if summary.stopped else ""}
<h2>Pass rates</h2>{table(groups, ["group", "tasks", "attempts", "pass@1", "95% CI", f"pass@{k}", f"pass^{k}"])}
<h2>Per attempt</h2>{table(stats, ["metric", "mean", "p50", "p95"])}
<h2>Plots</h2>{images}
<h2>Failed attempts ({sum(not r.passed for r in records)})</h2>{table(failed, ["task", "attempt", "family", "difficulty", "status", "why"])}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
