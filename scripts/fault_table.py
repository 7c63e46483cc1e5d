"""Measure the closing-note table of issue 39: an agent (a tool call, then an answer) against each fault of the
fault-injection server, the fault answered to every request (or once, where marked). Prints a markdown table and a
last line of JSON.

    .venv/bin/python scripts/fault_table.py            # fast retry policy and timeouts (seconds scale with them)
    .venv/bin/python scripts/fault_table.py --defaults # also the shipped defaults against refuse/reset/drop/503
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httpx

from agentkit.backends import remote
from agentkit.retry import RetryPolicy
from agentkit.testing.fault_server import FAULTS, fault_table, run_fault

FAST = RetryPolicy(max_attempts=5, backoff_base=0.05, backoff_max=0.4, max_retry_after=1.0, window=10.0)
FAST_TIMEOUT = httpx.Timeout(1.0)
NOT_STREAMED = ("cut_json", "html", "echo_auth_stream", "hang_mid_stream", "no_usage")
ONCE = ("reset", "drop", "cut_json", "status_503")


async def main(defaults: bool) -> None:
    rows = []
    for fault in [f for f in FAULTS if f != "ok"]:
        rows.append((await run_fault(fault, retry=FAST, timeout=FAST_TIMEOUT))[0])
    for fault in NOT_STREAMED:
        rows.append((await run_fault(fault, stream=False, retry=FAST, timeout=FAST_TIMEOUT))[0])
    for fault in ONCE:
        rows.append((await run_fault(fault, retry=FAST, timeout=FAST_TIMEOUT, permanent=False))[0])
    print("Fast policy: 5 attempts, pauses 0.05 s doubling to 0.4 s, window 10 s; every httpx timeout 1 s.\n")
    print(fault_table(rows))
    default_rows = []
    if defaults:
        for fault in ("refuse", "reset", "drop", "status_503", "echo_auth_error"):
            default_rows.append((await run_fault(fault))[0])
        print(
            f"\nShipped defaults ({remote.WORST_CASE_ATTEMPTS} attempts, pauses 0.5 s doubling to 8 s, window "
            f"{remote.DEFAULT_RETRY.window:g} s, worst case {remote.WORST_CASE_SECONDS:g} s):\n"
        )
        print(fault_table(default_rows))
    summary = {
        "rows": len(rows) + len(default_rows),
        "key_appeared": any(r.key_appeared for r in rows + default_rows),
        "max_attempts_seen": max(r.attempts for r in rows + default_rows),
        "worst_case_attempts": remote.WORST_CASE_ATTEMPTS,
        "worst_case_seconds": remote.WORST_CASE_SECONDS,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--defaults", action="store_true", help="also measure the shipped retry defaults")
    asyncio.run(main(parser.parse_args().defaults))
