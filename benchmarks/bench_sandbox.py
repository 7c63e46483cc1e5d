"""Sandbox benchmark: a warm sandbox's round trip against `docker exec` and `docker run --rm`, same run, same image.

    python benchmarks/bench_sandbox.py [--quick]

Measures
- per-execution latency (p50, p95) of `print(1)` through a warm sandbox (runner round trip on the attached stream),
- the same program via the Docker SDK's `exec_run` (`docker exec python3 -c 'print(1)'`) in the same container,
- and via `docker run --rm` (a new container per call) with the same image and limits,
- time to acquire a sandbox from a warm pool and from cold,
- throughput with 8 and 32 concurrent sandboxes (every execution checked; failures counted),
- the "data" image (numpy, pandas, matplotlib): cold start, warm `print(1)`, and the first import of the three,
- gVisor (`SandboxLimits(runtime="runsc")`) where the engine has it: cold start and warm `print(1)`,
- what the runner's per-call isolation work costs (the /proc scan that kills leftovers, the kernel's idle check,
  stopping and continuing it), timed in a sandbox.
Prints a table, then, as its last line, one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agentkit.sandbox import Sandbox, SandboxLimits, SandboxPool, SandboxUnavailable, engine, image  # noqa: E402

LIMITS = SandboxLimits()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def warm_latency(sb: Sandbox, n: int) -> list[float]:
    async def once() -> None:
        result = await sb.run_python("print(1)")
        assert result.stdout == "1\n", result

    await timed(20, once)  # warm-up
    return await timed(n, once)


async def docker_exec_latency(sb: Sandbox, n: int) -> list[float]:
    container = engine.client().containers.get(sb.container_id)

    async def once() -> None:
        code, out = await engine.call(container.exec_run, ["python3", "-c", "print(1)"], user=str(sb.uid))
        assert code == 0 and out == b"1\n", (code, out)

    await timed(2, once)
    return await timed(n, once)


async def docker_run_latency(tag: str, n: int) -> list[float]:
    # The same limits as a sandbox, but the engine's json-file log: the output is read back with `docker logs`.
    host = engine.client().api.create_host_config(
        **{**LIMITS.host_config(), "log_config": {"type": "json-file"}}
    )

    def run_once() -> None:
        api = engine.client().api
        cid = api.create_container(tag, ["python3", "-c", "print(1)"], user="65534:65534", host_config=host)[
            "Id"
        ]
        try:
            api.start(cid)
            assert api.wait(cid)["StatusCode"] == 0
            assert api.logs(cid, stdout=True, stderr=False) == b"1\n"
        finally:
            api.remove_container(cid, force=True)

    async def once() -> None:
        await engine.call(run_once)

    await timed(1, once)
    return await timed(n, once)


async def acquire_times(n: int) -> tuple[list[float], list[float]]:
    warm: list[float] = []
    async with SandboxPool(size=2, limits=LIMITS) as pool:
        for _ in range(n):
            await pool.wait_ready()
            t0 = time.perf_counter()
            sb = await pool.acquire()
            warm.append(time.perf_counter() - t0)
            await pool.release(sb)
    cold: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        sb = await Sandbox(LIMITS).start()
        cold.append(time.perf_counter() - t0)
        await sb.close()
    return warm, cold


async def throughput(k: int, per_sandbox: int) -> dict[str, float]:
    """Start k sandboxes at once, then run `per_sandbox` checked executions in each, all concurrently."""
    failures = 0
    t0 = time.perf_counter()
    started = await asyncio.gather(*(Sandbox(LIMITS).start() for _ in range(k)), return_exceptions=True)
    start_wall = time.perf_counter() - t0
    boxes = [s for s in started if isinstance(s, Sandbox)]
    failures += k - len(boxes)

    async def work(i: int, sb: Sandbox) -> int:
        bad = 0
        for j in range(per_sandbox):
            try:
                r = await sb.run_python(f"print(sum(range({i + j})))")
                bad += r.stdout != f"{sum(range(i + j))}\n"
            except Exception:  # noqa: BLE001 - a failure is what we count
                bad += 1
        return bad

    t1 = time.perf_counter()
    bad = await asyncio.gather(*(work(i, sb) for i, sb in enumerate(boxes)))
    wall = time.perf_counter() - t1
    failures += sum(bad)
    await asyncio.gather(*(sb.close() for sb in boxes))
    return {
        "k": k,
        "execs": len(boxes) * per_sandbox,
        "wall": wall,
        "start_wall": start_wall,
        "failures": failures,
    }


async def image_times(n: int, **kw: Any) -> tuple[list[float], list[float], float]:
    """Cold starts, then warm print(1) latencies and (data image) the first import of numpy, pandas, matplotlib."""
    cold: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        sb = await Sandbox(**kw).start()
        cold.append(time.perf_counter() - t0)
        await sb.close()
    first_import = 0.0
    async with Sandbox(**kw) as sb:
        warm = await warm_latency(sb, 50)
        if kw.get("image") == "data":
            t0 = time.perf_counter()
            r = await sb.run_python("import numpy, pandas, matplotlib.pyplot")
            first_import = time.perf_counter() - t0
            assert r.ok, r
    return cold, warm, first_import


ISOLATION_WORK = """
import os, signal, time
def scan():
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                open(f'/proc/{p}/stat', 'rb').read()
            except OSError:
                pass
def idle():
    open(f'/proc/{os.getpid()}/syscall', 'rb').read()
def stop_cont():
    pid = os.fork()
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    t0 = time.perf_counter()
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        os.kill(pid, signal.SIGCONT)
    dt = (time.perf_counter() - t0) / 200
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return dt
def per(fn, n=500):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n
print(per(scan), per(idle), stop_cont())
"""


async def isolation_costs() -> tuple[float, float, float]:
    async with Sandbox(LIMITS) as sb:
        r = await sb.run_python(ISOLATION_WORK)
        assert r.ok, r
    scan, idle, stop = (float(x) for x in r.stdout.split())
    return scan, idle, stop


def has_runsc() -> bool:
    return "runsc" in (engine.client().info().get("Runtimes") or {})


async def main(quick: bool) -> dict[str, Any]:
    console = Console(width=120)
    tag = image.require_image()
    n_warm, n_exec, n_run, n_acq, per = (100, 10, 5, 5, 20) if quick else (500, 40, 15, 15, 50)
    async with Sandbox(LIMITS) as sb:
        warm = await warm_latency(sb, n_warm)
        dexec = await docker_exec_latency(sb, n_exec)
    drun = await docker_run_latency(tag, n_run)
    acq_warm, acq_cold = await acquire_times(n_acq)
    t8 = await throughput(8, per)
    t32 = await throughput(32, per)
    data = None
    try:
        image.require_image(image.DATA)
        data = await image_times(n_acq, image="data")
    except SandboxUnavailable as exc:
        console.print(f"[yellow]data image skipped: {exc}[/]")
    gvisor = await image_times(n_acq, limits=SandboxLimits(runtime="runsc")) if has_runsc() else None
    scan, idle, stop = await isolation_costs()

    ms = 1000.0
    rows = [
        ("warm sandbox: run_python('print(1)')", warm, "baseline"),
        ("docker exec: python3 -c 'print(1)'", dexec, None),
        ("docker run --rm: python3 -c 'print(1)'", drun, None),
        ("acquire from a warm pool", acq_warm, None),
        ("acquire cold (create + start + hello)", acq_cold, None),
    ]
    if data is not None:
        rows += [
            ("data image: acquire cold", data[0], None),
            ("data image: warm run_python('print(1)')", data[1], None),
        ]
        rows += [("data image: first `import numpy, pandas, matplotlib.pyplot`", [data[2]], None)]
    if gvisor is not None:
        rows += [
            ("runsc (gVisor): acquire cold", gvisor[0], None),
            ("runsc (gVisor): warm print(1)", gvisor[1], None),
        ]
    base = statistics.median(warm)
    table = Table(title=f"sandbox latency ({tag}; {'quick' if quick else 'full'} run)")
    for col in ("what", "n", "p50 ms", "p95 ms", "vs warm sandbox"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for name, values, note in rows:
        ratio = note or f"{statistics.median(values) / base:,.0f}x slower"
        table.add_row(
            name, str(len(values)), f"{pct(values, 0.5) * ms:.2f}", f"{pct(values, 0.95) * ms:.2f}", ratio
        )
    console.print(table)
    conc = Table(title="concurrent sandboxes (each execution checked)")
    for col in ("sandboxes", "executions", "start all (s)", "run all (s)", "executions/s", "failures"):
        conc.add_column(col, justify="right")
    for t in (t8, t32):
        conc.add_row(
            str(t["k"]),
            str(t["execs"]),
            f"{t['start_wall']:.2f}",
            f"{t['wall']:.2f}",
            f"{t['execs'] / t['wall']:.0f}",
            str(t["failures"]),
        )
    console.print(conc)
    iso = Table(title="the runner's isolation work per call, timed in a sandbox")
    for col in ("what", "µs"):
        iso.add_column(col, justify="left" if col == "what" else "right")
    iso.add_row("scan /proc for leftover processes (kill_all, after every call)", f"{scan * 1e6:.0f}")
    iso.add_row("is the kernel idle? (/proc/<kernel>/syscall, per answer)", f"{idle * 1e6:.0f}")
    iso.add_row("stop + continue the kernel (SIGSTOP, SIGCONT)", f"{stop * 1e6:.0f}")
    console.print(iso)
    extra: dict[str, Any] = {
        "isolation_scan_us": round(scan * 1e6, 1),
        "isolation_idle_us": round(idle * 1e6, 1),
    }
    if data is not None:
        extra["data_cold_p50_ms"] = round(pct(data[0], 0.5) * ms, 1)
        extra["data_warm_p50_ms"] = round(pct(data[1], 0.5) * ms, 3)
        extra["data_first_import_ms"] = round(data[2] * ms, 1)
    if gvisor is not None:
        extra["runsc_cold_p50_ms"] = round(pct(gvisor[0], 0.5) * ms, 1)
        extra["runsc_warm_p50_ms"] = round(pct(gvisor[1], 0.5) * ms, 3)
    return {
        **extra,
        "warm_p50_ms": round(pct(warm, 0.5) * ms, 3),
        "warm_p95_ms": round(pct(warm, 0.95) * ms, 3),
        "docker_exec_p50_ms": round(pct(dexec, 0.5) * ms, 2),
        "docker_run_p50_ms": round(pct(drun, 0.5) * ms, 1),
        "speedup_vs_docker_run": round(pct(drun, 0.5) / pct(warm, 0.5), 1),
        "speedup_vs_docker_exec": round(pct(dexec, 0.5) / pct(warm, 0.5), 1),
        "acquire_warm_p50_ms": round(pct(acq_warm, 0.5) * ms, 2),
        "acquire_cold_p50_ms": round(pct(acq_cold, 0.5) * ms, 1),
        "concurrent8_execs_per_s": round(t8["execs"] / t8["wall"], 1),
        "concurrent32_execs_per_s": round(t32["execs"] / t32["wall"], 1),
        "concurrent8_failures": t8["failures"],
        "concurrent32_failures": t32["failures"],
        "quick": quick,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under a minute)")
    figures = asyncio.run(main(parser.parse_args().quick))
    print(json.dumps(figures))
