"""Eval output for people: rich tables in the terminal, and the one-file HTML report (`agentkit.envs.report_html`).

pass@k and pass^k get columns only when k > 1 (with k=1 they equal pass@1); attempts lost to infrastructure errors
are shown apart from the figures, which leave them out.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from agentkit.envs.metrics import Comparison, EvalSummary
from agentkit.envs.report_html import group_cells, group_columns, pct, write_html

__all__ = ["print_comparison", "print_summary", "stats_table", "summary_table", "write_html"]


def summary_table(summary: EvalSummary, title: str = "Eval summary") -> Table:
    k = summary.k
    t = Table(title=f"{title} (k={k})")
    for col in group_columns(k):
        t.add_column(col, justify="left" if col == "group" else "right")
    t.add_row(*group_cells("all", summary.overall, k), style="bold")
    for name, g in summary.by_family.items():
        t.add_row(*group_cells(f"family {name}", g, k))
    for name, g in summary.by_difficulty.items():
        t.add_row(*group_cells(f"difficulty {name}", g, k))
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
    if summary.infra_errors:
        console.print(f"[red]infrastructure errors: {summary.infra_errors} attempt(s), not scored (pass figures are over "
                      f"the other {summary.overall.attempts}); re-run them with --retry-errors[/]")  # fmt: skip


def print_comparison(cmp: Comparison, names: tuple[str, str], console: Console | None = None) -> None:
    console = console or Console()
    a, b = cmp.a, cmp.b
    t = Table(title=f"{names[0]} (k={a.k}) vs {names[1]} (k={b.k}): {a.tasks} common tasks")
    for col in ("", names[0], names[1], "change"):
        t.add_column(col, justify="left" if not col else "right")
    t.add_row("pass@1", pct(a.pass1), pct(b.pass1), f"{100 * (b.pass1 - a.pass1):+.1f} pts")
    if a.k == b.k and a.k > 1:
        t.add_row(f"pass@{a.k}", pct(a.overall.pass_k), pct(b.overall.pass_k),
                  f"{100 * (b.overall.pass_k - a.overall.pass_k):+.1f} pts")  # fmt: skip
        t.add_row(f"pass^{a.k}", pct(a.overall.pass_hat_k), pct(b.overall.pass_hat_k),
                  f"{100 * (b.overall.pass_hat_k - a.overall.pass_hat_k):+.1f} pts")  # fmt: skip
    for key, label in (("turns", "mean turns"), ("tokens", "mean tokens"), ("cost", "mean cost $"), ("wall_time", "mean time s")):
        x, y = a.stats[key]["mean"], b.stats[key]["mean"]
        ratio = f"{y / x:.2f}x" if x else "-"
        t.add_row(label, f"{x:.4g}", f"{y:.4g}", ratio)
    t.add_row("infra errors", str(a.infra_errors), str(b.infra_errors), "")
    console.print(t)
    for label, s in ((names[0], a), (names[1], b)):
        cfg = ", ".join(f"{k}={v}" for k, v in s.config.items() if k in ("provider", "model", "max_turns", "thinking"))
        if cfg:
            console.print(f"{label}: {cfg}")
    console.print(f"flipped to pass ({len(cmp.gained)}): {', '.join(cmp.gained) or '-'}")
    console.print(f"flipped to fail ({len(cmp.lost)}): {', '.join(cmp.lost) or '-'}")
