"""agentkit's tools for any MCP client: start `agentkit mcp serve` on one task of a generated task set and on the
stdlib-docs search, then drive it with the official MCP SDK's client as any MCP host would (Claude Desktop, an IDE,
another framework's agent): list the tools, play the task's reference solution, read the episode's state and verdict.
Needs no model and no Docker (add --sandbox to the server's arguments for python, shell and files).

    python examples/mcp_serve.py
"""

import asyncio
import json
import sys
import tempfile
import urllib.parse
from pathlib import Path

from mcp import ClientSession, StdioServerParameters, stdio_client

from agentkit.envs.generator import generate_records


async def main() -> None:
    # 1. A task set with one ledger task (`agentkit envs generate` writes the same JSONL).
    record = next(r for r in generate_records(10, seed=42, difficulties=[3]) if r.task.family == "ledger")
    tasks = Path(tempfile.mkdtemp()) / "tasks.jsonl"
    tasks.write_text(record.to_json() + "\n")

    # 2. The server, as an MCP host would start it: `agentkit mcp serve ...` over stdio.
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agentkit", "mcp", "serve", "--search", "stdlib", "--tasks", str(tasks), "--task", "0"],
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        print(init.instructions)
        print("tools:", ", ".join(t.name for t in (await session.list_tools()).tools))

        # 3. Play the reference solution (a model would choose these calls) and one mistake.
        for call in record.solution.calls:
            res = await session.call_tool(call.tool, call.arguments)
            print(f"  {call.tool}({json.dumps(call.arguments)}) -> {res.content[0].text[:80]}")
        bad = await session.call_tool("move_money", {"amount": "lots"})
        print(f"  a bad call comes back as an error the model can read: {bad.content[0].text.splitlines()[0]}")

        # 4. The episode as resources: its state and the verdict for an answer.
        answer = urllib.parse.quote(record.solution.answer or "")
        verdict = json.loads((await session.read_resource(f"episode://verdict?answer={answer}")).contents[0].text)
        print("verdict:", verdict)

        found = await session.call_tool("search", {"query": "json dumps indent", "k": 1})
        print("search:", found.content[0].text.splitlines()[1])
    assert verdict["passed"], verdict


if __name__ == "__main__":
    asyncio.run(main())
