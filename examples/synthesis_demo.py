"""Environment synthesis, offline: a scripted model (ScriptedServer replaying a synthesis conversation in DeepSeek's
wire format) builds a trip-planning package in the sandbox; every gate runs for real; the kept tasks are scored by
the eval harness with the oracle and exported to Harbor folders. `make demo-synthesis` runs it.

With DeepSeek instead of the script:
    export DEEPSEEK_API_KEY=sk-...
    agentkit envs synthesize --category "trip planning" --provider deepseek --model deepseek-v4-flash --n 3 --out synth/
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from agentkit.backends.remote import RemoteBackend
from agentkit.envs.eval import default_agent_factory, evaluate, load_tasks
from agentkit.envs.packages.harbor import export_tasks
from agentkit.envs.packages.synthesizer import synthesize
from agentkit.sandbox import SandboxPool
from agentkit.testing.oracle import oracle_script
from agentkit.testing.scripted_server import ScriptedServer
from agentkit.testing.synthesis_script import synthesis_script


async def main(out: Path) -> None:
    os.environ.setdefault("DEEPSEEK_API_KEY", "scripted")
    with ScriptedServer(synthesis_script, enforce="deepseek-v4") as srv:
        async with RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url) as be:
            [res] = await synthesize(be, ["trip planning"], out)
    print(f"synthesis: {res.status}, {res.kept} task(s) kept, {res.checks} gate runs, {res.turns} turns, "
          f"{res.prompt_tokens + res.completion_tokens} tokens, ${res.cost:.4f} at deepseek-v4-flash prices "
          f"({res.seconds:.1f} s)")
    print(f"  package folder: {out / 'packages' / res.slug}\n  log: {out / 'logs' / (res.slug + '.jsonl')}")
    tasks = load_tasks(out / "tasks.jsonl")
    with ScriptedServer(oracle_script(tasks)) as srv:
        async with SandboxPool(size=2) as pool, RemoteBackend("vllm", "oracle", base_url=srv.base_url) as be:
            summary = await evaluate(default_agent_factory(be), tasks, k=1, sandbox_pool=pool)
    print(f"eval with the oracle: pass@1 {summary.pass1:.2f} over {summary.tasks} task(s)")
    roots = export_tasks(tasks, out / "harbor")
    print(f"Harbor task folders: {', '.join(str(r) for r in roots)}")
    print(__doc__.split("With DeepSeek")[1].replace(" instead of the script:", "With DeepSeek:"), end="")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="agentkit-synthesis-"))
    asyncio.run(main(target))
