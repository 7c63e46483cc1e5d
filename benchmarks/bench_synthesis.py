"""Environment synthesis: gate throughput, sandbox time per gate, the broken corpus caught, and one scripted
end-to-end synthesis (ScriptedServer replaying the synthesis conversation; every gate real).

    python benchmarks/bench_synthesis.py            # 20 packages through the gates
    python benchmarks/bench_synthesis.py --quick    # 4 packages (under a minute)

Needs Docker and the sandbox image (`agentkit sandbox build`). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.packages import GateConfig, check_package, check_packages
from agentkit.envs.packages.synthesizer import synthesize
from agentkit.pricing import price_for
from agentkit.testing.packages import broken_packages, trip_package
from agentkit.testing.scripted_server import ScriptedServer
from agentkit.testing.synthesis_script import synthesis_script


async def bench(n: int, concurrency: int) -> dict:
    pkgs = [trip_package(f"bench-{i}") for i in range(n)]
    t0 = time.monotonic()
    reports = await check_packages(pkgs, concurrency=concurrency)
    gate_wall = time.monotonic() - t0
    kept = sum(len(r.kept) for r in reports)
    per_gate: dict[str, float] = {}
    for r in reports:
        for g, s in r.gate_seconds.items():
            per_gate[g] = per_gate.get(g, 0.0) + s
    tasks = sum(len(r.outcomes) for r in reports)

    caught, corpus = 0, broken_packages()
    t1 = time.monotonic()
    for name, (reason, pkg) in corpus.items():
        [o] = (await check_package(pkg, config=GateConfig(exec_timeout=3))).outcomes
        ok = (not o.kept) and o.reason == reason
        caught += ok
        print(f"  broken: {name:45s} -> {o.reason:16s} {'ok' if ok else 'MISSED (want ' + reason + ')'}")
    broken_wall = time.monotonic() - t1

    os.environ.setdefault("DEEPSEEK_API_KEY", "scripted")
    with tempfile.TemporaryDirectory() as tmp, ScriptedServer(synthesis_script, enforce="deepseek-v4") as srv:
        async with RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url) as be:
            t2 = time.monotonic()
            [res] = await synthesize(be, ["trip planning"], Path(tmp))
            synth_wall = time.monotonic() - t2
    price = price_for("deepseek-v4-flash")
    return {
        "packages": n, "tasks": tasks, "kept": kept, "gate_wall": gate_wall, "packages_per_s": n / gate_wall,
        "per_gate": {g: s / n for g, s in per_gate.items()}, "broken_caught": caught, "broken_total": len(corpus),
        "broken_wall": broken_wall, "synth_wall": synth_wall, "synth_kept": res.kept, "synth_turns": res.turns,
        "synth_prompt_tokens": res.prompt_tokens, "synth_completion_tokens": res.completion_tokens,
        "synth_cache_hit_tokens": res.cache_hit_tokens, "synth_cost": res.cost,
        "cost_per_kept_task": res.cost / res.kept if res.kept else None, "priced": price is not None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 packages instead of 20")
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    r = asyncio.run(bench(4 if args.quick else 20, args.concurrency))
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| packages gated (2 tasks each, concurrency {args.concurrency}) | {r['packages']} |")
    print(f"| gate wall time | {r['gate_wall']:.2f} s |")
    print(f"| **packages validated per second** | **{r['packages_per_s']:.2f}** |")
    for g, s in r["per_gate"].items():
        print(f"| sandbox time per package: {g} | {s * 1000:.0f} ms |")
    print(f"| broken corpus caught for the right reason | {r['broken_caught']} / {r['broken_total']} ({r['broken_wall']:.1f} s) |")
    print(f"| scripted end-to-end synthesis (1 category) | {r['synth_wall']:.2f} s, {r['synth_turns']} turns, {r['synth_kept']} kept |")
    print(f"| its tokens (prompt / cache hit / completion) | {r['synth_prompt_tokens']} / {r['synth_cache_hit_tokens']} / {r['synth_completion_tokens']} |")
    if r["cost_per_kept_task"] is not None:
        print(f"| cost per kept task at deepseek-v4-flash prices | ${r['cost_per_kept_task']:.4f} |")
    print(json.dumps({"packages_per_s": round(r["packages_per_s"], 3), "broken_caught": r["broken_caught"],
                      "broken_total": r["broken_total"], "packages": r["packages"], "gate_wall_s": round(r["gate_wall"], 2),
                      "synth_wall_s": round(r["synth_wall"], 2),
                      "cost_per_kept_task": round(r["cost_per_kept_task"], 6) if r["cost_per_kept_task"] else None}))


if __name__ == "__main__":
    main()
