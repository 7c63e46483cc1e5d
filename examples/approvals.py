"""Tools that need a human's yes: ask a callback, or pause the run and resume it later from its messages.

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/approvals.py
"""

import asyncio
import os

from agentkit import Agent, tool
from agentkit.backends import RemoteBackend


@tool(requires_approval=True)
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    return f"sent '{subject}' to {to}"


async def main() -> None:
    backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))

    # 1. An application without a live user: the run ends with the calls waiting ...
    agent = Agent(backend, [send_email])
    paused = await agent.run("Email bob@example.com that the build is green.")
    print(paused.status, [f"{c.name}({c.arguments})" for c in paused.pending])
    # ... and resumes when someone decided (True, False, or a reason to deny).
    decisions = {call.id: True for call in paused.pending}
    resumed = await agent.run(history=paused.messages, approvals=decisions)
    print(resumed.status, resumed.output)

    # 2. A callback (sync or async) asked before each such call; a denial becomes a result the model reads.
    def ask(call, tool):
        return "only internal addresses" if "example.com" in call.arguments else True

    result = await Agent(backend, [send_email], approve=ask).run("Email bob@example.com hello.")
    print(result.status, result.output)


asyncio.run(main())
