"""The agent loop on the local DSA model: same `Agent`, same tools, a CPU model instead of an API.

    python examples/local_agent.py                       # the shipped checkpoint, else a random one
    python examples/local_agent.py --checkpoint PATH     # any checkpoint directory (model.safetensors + tokenizer.json)

Until a trained checkpoint ships, a randomly initialised model is created in a temporary folder: its words are noise,
but everything around them is real (prompt format, generation, streaming parser, tool dispatch, usage).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from agentkit import Agent, tool
from agentkit.backends.local.backend import (
    SHIPPED_CHECKPOINT,
    WEIGHTS_FILE,
    LocalDSABackend,
    init_random_checkpoint,
)
from agentkit.events import Final, ReasoningDelta, TextDelta, ToolCallDelta, ToolResult


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


async def main(checkpoint: str | None) -> None:
    if checkpoint is None and not (SHIPPED_CHECKPOINT / WEIGHTS_FILE).is_file():
        checkpoint = str(init_random_checkpoint(tempfile.mkdtemp(prefix="agentkit-random-")))
        print(f"(no trained checkpoint yet: using a random model in {checkpoint})")
    async with LocalDSABackend(checkpoint, max_tokens=48, temperature=0.8, seed=0) as backend:
        agent = Agent(
            backend, [add], system_prompt="You are a careful assistant.", thinking=True, max_turns=3
        )
        async for event in agent.stream("What is 17 + 25? Use the add tool."):
            if isinstance(event, ReasoningDelta | TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, ToolCallDelta) and event.name:
                print(f"\n→ {event.name}", flush=True)
            elif isinstance(event, ToolResult):
                print(f"\n← {event.call.name}: {event.content[:80]}")
            elif isinstance(event, Final):
                r = event.result
                print(f"\n\nstatus {r.status}, turns {r.turns}, tokens {r.usage.prompt_tokens} in / "
                      f"{r.usage.completion_tokens} out, cost ${r.cost:.4f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    asyncio.run(main(parser.parse_args().checkpoint))
