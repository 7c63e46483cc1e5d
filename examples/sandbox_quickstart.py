"""Run model-written code safely: one sandbox, a warm pool, and the `python` tool an agent would call.

    bash scripts/ensure-docker.sh && agentkit sandbox build     # once
    python examples/sandbox_quickstart.py
"""

from __future__ import annotations

import asyncio
import time

from agentkit.sandbox import Sandbox, SandboxLimits, SandboxPool, python_tool
from agentkit.tools import RunContext, reset_current_run, set_current_run


async def main() -> None:
    # 1. One sandbox: state persists across calls, files go in and out, hostile code is contained.
    async with Sandbox(limits=SandboxLimits(timeout=5)) as sb:
        await sb.put_file("numbers.txt", "\n".join(str(i) for i in range(1, 101)))
        await sb.run_python("nums = [int(x) for x in open('numbers.txt')]")
        print("sum:", (await sb.run_python("sum(nums)")).stdout.strip())
        blocked = await sb.run_python("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")
        print("network:", blocked.exc_type, "-", blocked.exc_message)
        stuck = await sb.run_python("while True: pass", timeout=1)
        print(f"endless loop: timed_out={stuck.timed_out} after {stuck.duration:.1f} s")
        await sb.run_shell("echo 'made by bash' > out.txt")
        print("file back:", (await sb.get_file("out.txt")).decode().strip())

    # 2. A warm pool and the agent tool: each agent run gets its own sandbox, released when the run ends.
    async with SandboxPool(size=2) as pool:
        tool = python_tool(pool)
        for name in ("run A", "run B"):
            run = RunContext()
            token = set_current_run(run)  # the agent loop does this for every run
            try:
                t0 = time.perf_counter()
                await tool.invoke({"code": f"who = {name!r}"})
                out = await tool.invoke({"code": "print('I am', who)"})
                print(f"{name}: {out.content!r} ({(time.perf_counter() - t0) * 1000:.0f} ms for two calls)")
            finally:
                reset_current_run(token)
                await run.aclose()


if __name__ == "__main__":
    asyncio.run(main())
