"""Generate checked tasks, look at one, play its reference solution through the episode's agentkit tools, score it,
and render its training transcript. Needs no model and no Docker.

    python examples/envs_quickstart.py
"""

import asyncio
import json

from agentkit.envs.generator import generate_records
from agentkit.envs.runtime import PYTHON_IMPL, Episode, ReferencePython
from agentkit.envs.trajectories import render


async def main() -> None:
    # 1. Ten tasks, one per family, difficulty 3; every one already proven solvable and non-trivial.
    records = generate_records(10, seed=42, difficulties=[3])
    rec = next(r for r in records if r.task.family == "ledger")
    print(f"[{rec.task.task_id}] {rec.task.instruction}\n")

    # 2. An episode: the environment's tools as agentkit Tools over a private copy of the state.
    ep = Episode(rec)
    tools = {t.name: t for t in ep.tools()}
    print("tools:", ", ".join(tools))
    print("score before doing anything:", ep.score(None))

    # 3. Play the reference (an agent would choose these calls itself) and score the outcome.
    for call in rec.solution.calls:
        out = await tools[call.tool].invoke(json.dumps(call.arguments))
        print(f"  {call.tool}({call.arguments}) -> {out.content[:90]}")
    print("score after the reference:", ep.score(rec.solution.answer), "\n")

    # 4. A data-analysis task: the python tool needs a runner. Agents get the Docker sandbox
    #    (Episode(rec, python=SandboxPython(sandbox))); here our own reference code runs in-process.
    data = next(r for r in records if r.task.family == "dataset")
    ep2 = Episode(data, python=ReferencePython())
    for call in data.solution.calls:
        res = await ep2.acall(call.tool, call.arguments)
        if data.environment.tool(call.tool).impl == PYTHON_IMPL:
            print(f"python printed: {res.content.strip()}")
    print(f"{data.task.instruction}\n  -> {data.solution.answer} {ep2.score(data.solution.answer)}\n")

    # 5. The training transcript of the first task.
    for m in render(rec)[1:4]:
        print(repr(m)[:160])


asyncio.run(main())
