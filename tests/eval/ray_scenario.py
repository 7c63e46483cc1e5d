"""Run by tests/eval/test_eval_ray.py inside a private network namespace (`unshare -n`, loopback up): a 2-node Ray
cluster on this machine evaluates a task set against the oracle server while one worker is killed mid-run, then a
single-process run of the same tasks; prints one JSON line comparing them.

    python tests/eval/ray_scenario.py OUT_DIR [N_TASKS]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.attempt import AgentSpec, default_agent_factory, needs_python
from agentkit.envs.eval import evaluate
from agentkit.envs.executors.ray import RayExecutor
from agentkit.envs.generator import generate_records
from agentkit.envs.results import ResultsStore
from agentkit.testing.oracle import oracle_script
from agentkit.testing.scripted_server import ScriptedServer


def main() -> None:
    out_dir = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    tasks = [r for r in generate_records(n + 20, seed=21, difficulties=(1, 2, 3)) if not needs_python(r)][:n]
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    ray_out, local_out = out_dir / "ray.jsonl", out_dir / "local.jsonl"
    report: dict = {"tasks": len(tasks)}
    with ScriptedServer(oracle_script(tasks), latency=0.05) as srv:
        spec = AgentSpec("vllm", "oracle", srv.base_url)
        executor = RayExecutor(spec, concurrency=4)
        killed: dict = {}

        def killer() -> None:  # kill one worker's process once a sixth of the attempts are stored
            while len(ResultsStore(ray_out).read().records) < len(tasks) // 3:
                time.sleep(0.05)
            _node, pid = ray.get(executor.actors[0].where.remote())
            killed["at"] = len(ResultsStore(ray_out).read().records)
            os.kill(pid, signal.SIGKILL)

        threading.Thread(target=killer, daemon=True).start()
        t0 = time.monotonic()
        s_ray = asyncio.run(evaluate(None, tasks, k=2, out=ray_out, executor=executor))
        report["ray_s"] = time.monotonic() - t0
        report["killed_at"] = killed.get("at")
        report["deaths"] = executor.deaths
        report["replaced"] = executor.replaced
        report["done_by"] = {str(w): n for w, n in sorted(executor.done_by.items())}
        report["workers"] = len(executor.actors)

        async def local() -> object:
            async with RemoteBackend("vllm", "oracle", base_url=srv.base_url) as be:
                return await evaluate(default_agent_factory(be), tasks, k=2, out=local_out, concurrency=4)

        s_local = asyncio.run(local())
    a, b = ResultsStore(ray_out).read(), ResultsStore(local_out).read()
    report["ray_lines"] = a.lines
    report["ray_keys"] = sorted(map(list, (r.key for r in a.records)))
    report["local_keys"] = sorted(map(list, (r.key for r in b.records)))
    report["same_outcomes"] = sorted((r.key, r.passed, r.status) for r in a.records) == sorted(
        (r.key, r.passed, r.status) for r in b.records)
    report["same_summary"] = s_ray.overall == s_local.overall and s_ray.by_family == s_local.by_family
    report["pass1"] = s_ray.pass1
    report["problems"] = [str(p) for p in a.problems]
    ray.shutdown()
    cluster.shutdown()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
