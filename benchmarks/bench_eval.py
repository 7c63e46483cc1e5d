"""Eval harness throughput and overhead, against the oracle server (a real HTTP server in its own process).

Two models, both the oracle (reference tool calls, then the reference answer), served from a separate process so it
does not share the harness's interpreter:
- instant: the harness overhead per model request ("step") at c=1 = (wall - the server's own time) / requests;
- 200 ms a reply (the shape of a real API): attempts/s for one process at concurrency 1, 8 and 32, and for Ray with
  two local nodes at 32 each (the same per-node concurrency as c32), all in this one run, with ratios against c=1.
Data-analysis tasks (Docker sandbox) are left out so the figures are the harness's.

Ray binds the machine's interface and probes the internet, so with Ray installed the benchmark re-runs itself in a
private network namespace (`unshare -n`, loopback up) where it may; otherwise the Ray row is skipped.

    python benchmarks/bench_eval.py           # full
    python benchmarks/bench_eval.py --quick   # under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.eval import AgentSpec, default_agent_factory, evaluate, needs_python
from agentkit.envs.generator import generate_records
from agentkit.envs.spec import TaskRecord, write_jsonl

SLOW = 0.2  # seconds per reply of the slow model
NETNS_FLAG = "AGENTKIT_BENCH_NETNS"


def make_tasks(n: int) -> list[TaskRecord]:
    """n tasks in a fixed shuffled order, so every prefix has the same mix of families and lengths (a prefix of the
    generator's order is biased: slots go round families first, then difficulties)."""
    import random

    records = [r for r in generate_records(n + n // 4 + 20, seed=1000) if not needs_python(r)][:n]
    random.Random(0).shuffle(records)
    return records


@contextlib.contextmanager
def oracle_process(task_file: Path, latency: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "agentkit.testing.oracle", str(task_file), str(latency)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        yield proc.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()


async def _stats(base_url: str) -> dict[str, Any]:
    async with RemoteBackend("vllm", "oracle", base_url=base_url) as backend:
        return (await backend._client.get("/_stats")).json()


async def run_local(tasks: list[TaskRecord], base_url: str, concurrency: int, out: Path) -> dict[str, Any]:
    before = await _stats(base_url)
    async with RemoteBackend("vllm", "oracle", base_url=base_url) as backend:
        t0 = time.perf_counter()
        summary = await evaluate(default_agent_factory(backend), tasks, concurrency=concurrency, out=out)
        wall = time.perf_counter() - t0
    after = await _stats(base_url)
    assert summary.pass1 == 1.0 and not summary.infra_errors, f"the oracle must pass everything: {summary.statuses}"
    return _row(f"local c={concurrency}", len(tasks), wall, after, before)


def _row(name: str, n: int, wall: float, after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    requests = after["requests"] - before["requests"]
    server = after["server_time"] - before["server_time"]
    return {"name": name, "tasks": n, "tasks_per_s": n / wall, "steps": requests, "wall_s": wall,
            "overhead_ms_per_step": (wall - server) / requests * 1000}  # fmt: skip


def run_ray(tasks: list[TaskRecord], base_url: str, concurrency: int, out: Path) -> dict[str, Any] | None:
    import ray
    from ray.cluster_utils import Cluster

    from agentkit.envs.executors.ray import RayExecutor

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        executor = RayExecutor(AgentSpec("vllm", "oracle", base_url), concurrency=concurrency)
        warm = tasks[: 2 * 2]  # start the workers and their backends before the clock runs
        asyncio.run(evaluate(None, warm, executor=executor))
        before = asyncio.run(_stats(base_url))
        t0 = time.perf_counter()
        summary = asyncio.run(evaluate(None, tasks, out=out, executor=executor))
        wall = time.perf_counter() - t0
        after = asyncio.run(_stats(base_url))
        assert summary.pass1 == 1.0 and not summary.infra_errors, summary.statuses
        return _row(f"ray 2x c={concurrency}", len(tasks), wall, after, before)
    finally:
        ray.shutdown()
        cluster.shutdown()


def maybe_reexec_in_netns() -> None:
    """With Ray installed, run again inside `unshare -n` (loopback only) unless already there or not allowed."""
    if os.environ.get(NETNS_FLAG) or importlib.util.find_spec("ray") is None:
        return
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    os.environ[NETNS_FLAG] = "1"
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {cmd}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks: under a minute")
    args = parser.parse_args()
    maybe_reexec_in_netns()
    # enough tasks that the last, partly filled wave of attempts is a small part of each run
    sizes = ({"instant": 40, 1: 5, 8: 40, 32: 128, "ray": 256} if args.quick else
             {"instant": 1000, 1: 30, 8: 240, 32: 800, "ray": 1600})  # fmt: skip
    tasks = make_tasks(max(v for v in sizes.values()))
    rows: list[dict[str, Any]] = []
    ray_row = None
    with tempfile.TemporaryDirectory() as tmp:
        task_file = Path(tmp) / "tasks.jsonl"
        write_jsonl(task_file, tasks)
        with oracle_process(task_file, 0.0) as url:
            instant = asyncio.run(run_local(tasks[: sizes["instant"]], url, 1, Path(tmp) / "instant.jsonl"))
        instant["name"] = "instant, c=1"
        with oracle_process(task_file, SLOW) as url:
            for c in (1, 8, 32):
                rows.append(asyncio.run(run_local(tasks[: sizes[c]], url, c, Path(tmp) / f"c{c}.jsonl")))
            if os.environ.get(NETNS_FLAG):
                ray_row = run_ray(tasks[: sizes["ray"]], url, 32, Path(tmp) / "ray.jsonl")
                rows.append(ray_row)
    base, c32 = rows[0], rows[2]
    table = Table(title=f"Eval harness, oracle model with {SLOW * 1000:.0f} ms a reply (and an instant one for the "
                  "overhead); one machine, one run")  # fmt: skip
    for col in ("run", "tasks", "steps", "tasks/s", "steps/s", "vs c=1", "vs c=32", "overhead ms/step", "wall s"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in [instant, *rows]:
        slow = r is not instant
        # overhead = wall - server time only means something with one request at a time (c=1)
        serial = r is instant or r is base
        table.add_row(r["name"], str(r["tasks"]), str(r["steps"]), f"{r['tasks_per_s']:.2f}", f"{r['steps'] / r['wall_s']:.1f}",
                      f"{r['tasks_per_s'] / base['tasks_per_s']:.1f}x" if slow else "-",
                      f"{r['tasks_per_s'] / c32['tasks_per_s']:.2f}x" if slow else "-",
                      f"{r['overhead_ms_per_step']:.2f}" if serial else "-", f"{r['wall_s']:.1f}")  # fmt: skip
    Console(width=140).print(table)
    if ray_row is None:
        print("ray: skipped (needs `pip install 'agentkit[ray]'` and permission for `unshare -n`)", file=sys.stderr)
    print(json.dumps({
        "overhead_ms_per_step": round(instant["overhead_ms_per_step"], 3),
        "tasks_per_s_instant_c1": round(instant["tasks_per_s"], 1),
        "tasks_per_s_c1_slow": round(rows[0]["tasks_per_s"], 2),
        "tasks_per_s_c8_slow": round(rows[1]["tasks_per_s"], 2),
        "tasks_per_s_c32_slow": round(c32["tasks_per_s"], 2),
        "ray_tasks_per_s_slow": round(ray_row["tasks_per_s"], 2) if ray_row else None,
        "c32_vs_c1": round(c32["tasks_per_s"] / base["tasks_per_s"], 1),
        "ray_vs_c32": round(ray_row["tasks_per_s"] / c32["tasks_per_s"], 2) if ray_row else None,
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
