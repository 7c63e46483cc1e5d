"""Eval harness throughput and overhead: 1,000 generated tasks against the oracle server at concurrency 1, 8 and 32.

The oracle (a real HTTP server on 127.0.0.1, in its own process) answers each task with its reference tool calls and answer, instantly,
and measures its own time; harness overhead = wall time minus server time, per model request ("tool step"). It
covers the agent loop, the HTTP client, episode set-up, tool execution over the private state, verification and the
results file (flushed per attempt). Data-analysis tasks (which need the Docker sandbox) are left out so the figure is the harness's.

    python benchmarks/bench_eval.py           # 1,000 tasks
    python benchmarks/bench_eval.py --quick   # 200 tasks
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentkit.envs.eval import default_agent_factory, evaluate, needs_python
from agentkit.envs.generator import generate_records
from agentkit.envs.spec import TaskRecord, write_jsonl
from agentkit.backends.remote import RemoteBackend


def make_tasks(n: int) -> list[TaskRecord]:
    records = generate_records(n + n // 4 + 20, seed=1000)
    return [r for r in records if not needs_python(r)][:n]


@contextlib.contextmanager
def oracle_process(task_file: Path) -> Iterator[str]:
    """The oracle server in its own process, so it does not compete with the harness for this interpreter's GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "agentkit.testing.oracle", str(task_file)], stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()


async def run(tasks: list[TaskRecord], concurrency: int, out_dir: Path) -> dict[str, float]:
    task_file = out_dir / "tasks.jsonl"
    write_jsonl(task_file, tasks)
    with oracle_process(task_file) as base_url:
        async with RemoteBackend("vllm", "oracle", base_url=base_url) as backend:
            before = (await backend._client.get("/_stats")).json()
            t0 = time.perf_counter()
            summary = await evaluate(default_agent_factory(backend), tasks, concurrency=concurrency,
                                     out=out_dir / f"c{concurrency}.jsonl")  # fmt: skip
            wall = time.perf_counter() - t0
            after = (await backend._client.get("/_stats")).json()
    requests = after["requests"] - before["requests"]
    server = after["server_time"] - before["server_time"]
    assert summary.pass1 == 1.0, f"the oracle must pass everything, got {summary.pass1}"
    return {
        "concurrency": concurrency,
        "tasks_per_s": len(tasks) / wall,
        "overhead_ms_per_step": (wall - server) / requests * 1000,
        "overhead_ms_per_task": (wall - server) / len(tasks) * 1000,
        "steps": requests,
        "wall_s": wall,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    tasks = make_tasks(n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in (1, 8, 32):
            rows.append(await run(tasks, c, Path(tmp)))
    base = rows[0]
    table = Table(title=f"Eval harness: {len(tasks)} oracle tasks ({rows[0]['steps']} tool steps), same machine")
    for col in ("concurrency", "tasks/s", "vs c=1", "overhead ms/step", "overhead ms/task", "wall s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["concurrency"]), f"{r['tasks_per_s']:.0f}", f"{r['tasks_per_s'] / base['tasks_per_s']:.2f}x",
                      f"{r['overhead_ms_per_step']:.2f}", f"{r['overhead_ms_per_task']:.2f}", f"{r['wall_s']:.1f}")  # fmt: skip
    Console().print(table)
    print(json.dumps({
        "overhead_ms_per_step": round(base["overhead_ms_per_step"], 3),
        "tasks_per_s_c1": round(rows[0]["tasks_per_s"], 1),
        "tasks_per_s_c8": round(rows[1]["tasks_per_s"], 1),
        "tasks_per_s_c32": round(rows[2]["tasks_per_s"], 1),
        "tasks": len(tasks),
        "steps": base["steps"],
    }))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
