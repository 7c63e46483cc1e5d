"""Run by tests/eval/test_eval_ray.py inside a private network namespace (`unshare -n`, loopback up): the real
`agentkit` CLI against a 2-node Ray cluster on this machine (`--executor ray --address ...`), each command compared
with a single-process run of the same arguments; prints one JSON line.

    python tests/eval/ray_cli_scenario.py OUT_DIR generate,eval[,synthesize]

- generate: `envs generate --executor ray` gives the same bytes as `--workers 1`, and resumes an interrupted run
  (an `OUT.partial` holding the first slots) to the same bytes again;
- eval: `eval --executor ray` against the oracle server (`python -m agentkit.testing.oracle`, started in the same
  namespace) gives the same attempts, outcomes and summary as `--executor local`;
- synthesize: `envs synthesize --executor ray` against the scripted synthesis model (Docker sandboxes on the
  workers) keeps the same tasks as a local run, then resumes without a request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AGENTKIT = str(Path(sys.executable).with_name("agentkit"))


def cli(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTKIT, *argv], capture_output=True, text=True, timeout=timeout)


def check_generate(out: Path, address: str) -> dict[str, Any]:
    from agentkit.envs.families import families

    common = ["envs", "generate", "--n", "40", "--seed", "11", "--difficulty", "1-3"]
    local = cli(*common, "--workers", "1", "--out", str(out / "gen-local.jsonl"))
    ray = cli(*common, "--executor", "ray", "--address", address, "--out", str(out / "gen-ray.jsonl"))
    full = (out / "gen-local.jsonl").read_bytes()
    # an interrupted run: the first 15 tasks in OUT.partial with its plan, as `envs generate` leaves them
    partial = out / "gen-resumed.jsonl.partial"
    partial.write_bytes(b"".join(full.splitlines(keepends=True)[:15]))
    plan = {"n": 40, "seed": 11, "families": list(families()), "difficulty": [1, 2, 3], "wording": "train"}
    partial.with_name(partial.name + ".json").write_text(json.dumps(plan))
    resumed = cli(*common, "--executor", "ray", "--address", address, "--out", str(out / "gen-resumed.jsonl"))
    said, said_resumed = (" ".join(p.stderr.split()) for p in (ray, resumed))  # rich wraps lines at its width
    return {
        "rc": [local.returncode, ray.returncode, resumed.returncode],
        "stderr": (ray.stderr + resumed.stderr)[-2000:],
        "lines": len(full.splitlines()),
        "same_bytes": (out / "gen-ray.jsonl").read_bytes() == full,
        "resumed_same_bytes": (out / "gen-resumed.jsonl").exists() and (out / "gen-resumed.jsonl").read_bytes() == full,
        "said_resuming": "resuming" in said_resumed and "15 task(s) kept" in said_resumed,
        "said_ray": "on the Ray cluster" in said,
        "progress": "40 tasks ->" in said and "40/40" in said,
    }


def check_eval(out: Path, address: str) -> dict[str, Any]:
    from agentkit.envs.attempt import needs_python
    from agentkit.envs.generator import generate_records
    from agentkit.envs.metrics import summarize
    from agentkit.envs.results import ResultsStore
    from agentkit.envs.spec import write_jsonl

    tasks = [r for r in generate_records(36, seed=23, difficulties=(1, 2, 3)) if not needs_python(r)][:20]
    task_file = out / "tasks.jsonl"
    write_jsonl(task_file, tasks)
    server = subprocess.Popen([sys.executable, "-m", "agentkit.testing.oracle", str(task_file), "0.02"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        common = ["eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle", "--base-url", url,
                  "--k", "2", "--concurrency", "4", "--no-report", "--progress-every", "1"]  # fmt: skip
        ray = cli(*common, "--executor", "ray", "--address", address, "--out", str(out / "ray.jsonl"))
        local = cli(*common, "--out", str(out / "local.jsonl"))
    finally:
        server.kill()
        server.wait()
    a, b = ResultsStore(out / "ray.jsonl").read(), ResultsStore(out / "local.jsonl").read()
    sa, sb = summarize(a.records, k=2, config=a.config), summarize(b.records, k=2, config=b.config)
    ja, jb = (json.loads((out / f"{n}.summary.json").read_text()) for n in ("ray", "local"))
    return {
        "rc": [ray.returncode, local.returncode],
        "stderr": ray.stderr[-2000:],
        "attempts": len(a.records),
        "same_keys": sorted(r.key for r in a.records) == sorted(r.key for r in b.records),
        "same_outcomes": sorted((r.key, r.passed, r.status) for r in a.records)
        == sorted((r.key, r.passed, r.status) for r in b.records),
        "same_summary": sa.overall == sb.overall and sa.by_family == sb.by_family and sa.by_difficulty == sb.by_difficulty,
        "same_config": ja["config"] == jb["config"] and a.config == b.config,
        "pass1": [ja["overall"]["pass1"], jb["overall"]["pass1"]],
        "same_summary_file": ja["overall"] == jb["overall"] and ja["by_family"] == jb["by_family"],
        "progress": "eval 40/40" in ray.stderr,
    }


def check_synthesize(out: Path, address: str) -> dict[str, Any]:
    from agentkit.testing.scripted_server import ScriptedServer
    from agentkit.testing.synthesis_script import synthesis_script

    cats = out / "cats.txt"
    cats.write_text("trip planning\nflight booking\n")
    with ScriptedServer(synthesis_script, enforce="deepseek-v4") as srv:
        common = ["envs", "synthesize", "--categories", str(cats), "--provider", "deepseek", "--model",
                  "deepseek-v4-flash", "--base-url", srv.base_url, "--n", "2", "--concurrency", "2"]  # fmt: skip
        ray = cli(*common, "--executor", "ray", "--address", address, "--out", str(out / "syn-ray"), timeout=400)
        served = len(srv.requests)
        again = cli(*common, "--executor", "ray", "--address", address, "--out", str(out / "syn-ray"))
        resumed_requests = len(srv.requests) - served
        local = cli(*common, "--out", str(out / "syn-local"), timeout=400)

    def kept(folder: Path) -> list[str]:
        lines = (folder / "tasks.jsonl").read_text().splitlines() if (folder / "tasks.jsonl").exists() else []
        return [json.loads(line)["task"]["task_id"] for line in lines]

    def files(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    return {
        "rc": [ray.returncode, again.returncode, local.returncode],
        "stderr": (ray.stderr + ray.stdout)[-2000:],
        "kept_ray": kept(out / "syn-ray"),
        "kept_local": kept(out / "syn-local"),
        "same_tasks_file": (out / "syn-ray" / "tasks.jsonl").read_bytes() == (out / "syn-local" / "tasks.jsonl").read_bytes(),
        "same_files": files(out / "syn-ray") == files(out / "syn-local"),
        "resumed_requests": resumed_requests,
        "said_ray": "on the Ray cluster" in ray.stderr,
    }


def main() -> None:
    out = Path(sys.argv[1])
    which = sys.argv[2].split(",")
    os.environ.setdefault("DEEPSEEK_API_KEY", "test")  # the scripted synthesis model's; workers inherit it
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    report: dict[str, Any] = {"nodes": len([n for n in ray.nodes() if n["Alive"]])}
    try:
        for name in which:
            report[name] = {"generate": check_generate, "eval": check_eval, "synthesize": check_synthesize}[name](
                out, cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
