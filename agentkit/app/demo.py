"""`agentkit demo` (and `make demo`): one agent episode with real tools, shown live, offline by default.

Which model answers, in order of preference:
1. a configured remote model (`DEEPSEEK_API_KEY`, or `AGENTKIT_PROVIDER` + its base URL): one live episode;
2. the local DSA model shipped in `model_backend/local/checkpoint/` (the main job, offline): generate a held-out task
   set across every family (search and sandbox ones included), show one episode live, then evaluate the whole set
   with a progress bar, print the summary table and write the HTML report;
3. otherwise a scripted model: a real OpenAI-compatible HTTP server on 127.0.0.1 replays DeepSeek-style turns that react
   to the real tool results. The loop, the wire format, the sandbox and the search index are all real; only the
   model's words are scripted, and the demo says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from agentkit.console import EventPrinter
from agentkit.events import Final, RunResult
from agentkit.loop import Agent
from agentkit.tools import Tool

TASK = (
    "What is the median of the numbers 3, 1, 4, 1, 5, 9, 2, 6? Look up which standard-library function computes it, "
    "then check the value by running Python."
)
SYSTEM = "You are a careful assistant. Look things up with `search` and verify numbers with `python` before answering."


def _remote_configured() -> bool:
    provider = os.environ.get("AGENTKIT_PROVIDER", "deepseek")
    if provider == "deepseek":
        return bool(os.environ.get("DEEPSEEK_API_KEY"))
    return provider != "local"


def demo_script(body: dict[str, Any]) -> Any:
    """The scripted model: search, then run Python, then answer from what the tools really returned."""
    from agentkit.testing.scripted_server import Reply

    messages = body["messages"]
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    results = [m for m in messages if m["role"] == "tool"]
    if not results and "search" in tools:
        return Reply(
            reasoning="The user wants the median of 8 numbers. The statistics module should have a function for it; "
            "let me search the standard-library docs.",
            tool_calls=[("search", json.dumps({"query": "statistics median middle value", "k": 3}))],
        )
    if len(results) <= 1 and "python" in tools and not any("python" == m.get("name") for m in messages):
        found = re.search(r"statistics\.(median\w*)", results[-1]["content"]) if results else None
        fn = found.group(1) if found else "median"
        return Reply(
            reasoning=f"The docs point at statistics.{fn}. With an even count the median is the mean of the two middle "
            "values. I'll compute it in the sandbox to be sure.",
            tool_calls=[("python", json.dumps({"code": f"import statistics\nprint(statistics.{fn}([3, 1, 4, 1, 5, 9, 2, 6]))"}))],
        )
    value = results[-1]["content"].strip().splitlines()[0] if results else "3.5"
    return Reply(
        reasoning=f"The sandbox printed {value}. Sorted: 1 1 2 3 4 5 6 9; the middle pair is 3 and 4, so 3.5. Consistent.",
        content=f"The median is **{value}** (sorted: 1, 1, 2, 3, 4, 5, 6, 9; the middle values 3 and 4 average to "
        f"3.5), computed with `statistics.median`.",
    )


def _tools(console: Console) -> tuple[list[Tool], Any]:
    """The demo's tools and the sandbox pool to close at the end (None without Docker)."""
    tools: list[Tool] = []
    pool = None
    try:
        from agentkit.search import default_search_tool

        tools.append(default_search_tool())
    except Exception as exc:  # noqa: BLE001 - the demo goes on with what this machine has
        console.print(f"[yellow]search unavailable: {exc}[/]")
    try:
        from agentkit.sandbox import SandboxPool, python_tool

        pool = SandboxPool(size=1)  # warmed while the model thinks, so the first python call costs ~1 ms
        tools.append(python_tool(pool))
    except Exception as exc:  # noqa: BLE001
        console.print(f"[yellow]python sandbox unavailable: {exc} (run `make demo`, which sets up Docker)[/]")
    return tools, pool


async def _run(agent: Agent, printer: EventPrinter, pool: Any) -> RunResult:
    result = None
    if pool is not None:
        await pool.start(wait=False)
    try:
        async for event in agent.stream(TASK):
            printer(event)
            if isinstance(event, Final):
                result = event.result
    finally:
        if pool is not None:
            await pool.close()
        close = getattr(agent.model, "aclose", None)
        if close is not None:
            await close()
    assert result is not None
    return result


DEMO_SEED = 424_242  # held out: training uses other seeds (see agentkit.training.recipe)
DEMO_TASKS_PER_FAMILY = 2
DEMO_DIR = Path(os.environ.get("AGENTKIT_DEMO_DIR", ".agentkit/demo"))


def _local_checkpoint() -> Path | None:
    try:
        from agentkit.backends.local.backend import SHIPPED_CHECKPOINT
    except ImportError:  # the local extra (torch) is not installed
        return None
    return SHIPPED_CHECKPOINT if (SHIPPED_CHECKPOINT / "model.safetensors").exists() else None


def local_pipeline(
    console: Console, *, per_family: int = DEMO_TASKS_PER_FAMILY, seed: int = DEMO_SEED, checkpoint: Path | None = None
) -> int:
    """Held-out tasks -> one live episode -> eval of the set -> summary and HTML report, all offline."""
    from agentkit.backends.local.shipped import shipped_backend
    from agentkit.envs.eval import evaluate, needs_python
    from agentkit.envs.eval_cli import eval_progress
    from agentkit.envs.families import families
    from agentkit.envs.generator import generate_records
    from agentkit.envs.report import print_summary, write_html
    from agentkit.envs.runtime import Episode
    from agentkit.envs.spec import write_jsonl
    from agentkit.training.agent import agent_factory

    names = sorted(families())
    console.rule("agentkit demo: the local DSA model, offline")
    with console.status(f"generating {per_family * len(names)} held-out tasks (seed {seed}, difficulty 1-2)"):
        tasks = generate_records(per_family * len(names), seed=seed, difficulties=(1, 2))
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    write_jsonl(DEMO_DIR / "tasks.jsonl", tasks)
    console.print(f"[bold]tasks:[/] {len(tasks)} across {len(names)} families -> {DEMO_DIR / 'tasks.jsonl'}")
    backend = shipped_backend(checkpoint)
    factory = agent_factory(backend)
    live = next((t for t in tasks if t.task.family == "knowledge"), tasks[0])
    out = DEMO_DIR / "results.jsonl"
    out.unlink(missing_ok=True)  # the demo starts fresh every time: same seed, same tasks, same report

    async def pipeline() -> Any:
        try:
            console.print(f"\n[bold]one episode, live[/] ({live.task.family}, difficulty {live.task.difficulty}):")
            console.print(f"[bold]task:[/] {live.task.instruction}\n")
            episode = Episode(live)
            result = None
            show = EventPrinter(console)
            async for event in factory(episode).stream(live.task.instruction):
                show(event)
                if isinstance(event, Final):
                    result = event.result
            verdict = episode.score(result.output if result else None)
            console.print(("[green]verifier: passed[/]" if verdict.passed else
                           f"[red]verifier: failed[/] ({'; '.join(verdict.failures)[:300]})") + "\n")  # fmt: skip
            sandbox_note = " (the data-analysis family runs in Docker sandboxes)" if any(needs_python(t) for t in tasks) else ""
            console.print(f"[bold]evaluating all {len(tasks)} tasks{sandbox_note}[/]")
            # the local model's malformed output is scored and kept in each transcript: a warning per attempt would
            # only break up the progress bar
            quiet = logging.getLogger("agentkit.local")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                with eval_progress(console, len(tasks)) as on_attempt:
                    return await evaluate(factory, tasks, k=1, concurrency=4, out=out, on_attempt=on_attempt,
                                          config={"model": "local-dsa", "seed": seed})  # fmt: skip
            finally:
                quiet.setLevel(level)
        finally:
            await backend.aclose()

    summary = asyncio.run(pipeline())
    print_summary(summary, console)
    from agentkit.envs.eval import load_results

    report = write_html(DEMO_DIR / "report.html", summary, load_results(out), config={"model": "local-dsa", "seed": seed})
    console.print(f"results: {out}\nreport:  {report.resolve()}")
    return 0


def main() -> int:
    """`AGENTKIT_DEMO_MODEL=remote|local|scripted` forces a choice; by default the first available one wins."""
    console = Console(highlight=False, soft_wrap=True)
    choice = os.environ.get("AGENTKIT_DEMO_MODEL") or (
        "remote" if _remote_configured() else "local" if _local_checkpoint() is not None else "scripted"
    )
    if choice not in ("remote", "local", "scripted"):
        console.print(f"[red]AGENTKIT_DEMO_MODEL={choice!r}: use remote, local or scripted[/]")
        return 2
    if choice == "local":
        if _local_checkpoint() is None:
            console.print("[red]no local checkpoint ships in model_backend/local/checkpoint/: train one with "
                          "`agentkit local train RUN_DIR` and `agentkit local ship RUN_DIR`[/]")  # fmt: skip
            return 2
        return local_pipeline(console)
    tools, pool = _tools(console)
    with ExitStack() as stack:
        if choice == "remote":
            from agentkit.backends.remote import RemoteBackend

            backend: Any = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
            label = f"remote model {backend.model} ({backend.profile.name})"
        else:
            from agentkit.backends.remote import RemoteBackend
            from agentkit.testing.scripted_server import ScriptedServer

            srv = stack.enter_context(ScriptedServer(demo_script, enforce="deepseek-v4"))
            backend = RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="offline-demo")
            label = "scripted DeepSeek-style model over a local HTTP server (no API key configured)"
            console.rule("agentkit demo")
            console.print(
                "No model is configured, so the model's turns are [bold]scripted[/] (they react to the real tool "
                "results); the loop, the DeepSeek wire format, the Docker sandbox and the search index are real.\n"
                "For a real model: [bold]export DEEPSEEK_API_KEY=sk-...[/] (or AGENTKIT_PROVIDER=vllm "
                "VLLM_BASE_URL=http://host:8000/v1 AGENTKIT_MODEL=name) and run [bold]make demo[/] again."
            )
            console.rule()
        console.print(f"[bold]model:[/] {label}\n[bold]tools:[/] {', '.join(t.name for t in tools) or '(none)'}")
        console.print(f"[bold]task:[/] {TASK}\n")
        agent = Agent(backend, tools, system_prompt=SYSTEM, thinking=True, max_turns=8, deadline=300)
        result = asyncio.run(_run(agent, EventPrinter(console), pool))
    return 0 if result.status == "completed" else 1
