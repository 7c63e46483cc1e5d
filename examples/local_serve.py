"""`agentkit serve` in a few lines: the local DSA model behind an OpenAI-compatible server, used by the official
`openai` client (streaming, tools, reasoning_content).

    python examples/local_serve.py [--checkpoint PATH]

The same server runs from the shell: `agentkit serve --provider local --checkpoint PATH --port 8000`.
Without a trained checkpoint a random model is served: the plumbing is real, the words are noise.
"""

from __future__ import annotations

import argparse
import tempfile

import openai

from agentkit.backends.local.backend import (
    SHIPPED_CHECKPOINT,
    WEIGHTS_FILE,
    LocalDSABackend,
    init_random_checkpoint,
)
from agentkit.backends.server import ChatServer

ADD = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}  # fmt: skip


def main(checkpoint: str | None) -> None:
    if checkpoint is None and not (SHIPPED_CHECKPOINT / WEIGHTS_FILE).is_file():
        checkpoint = str(init_random_checkpoint(tempfile.mkdtemp(prefix="agentkit-random-")))
    backend = LocalDSABackend(checkpoint, max_tokens=32, temperature=0.8, seed=0)
    with ChatServer(backend, port=0, api_key="sk-local") as server:  # 127.0.0.1, a free port
        print(f"serving at {server.base_url}")
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-local")
        print("models:", [m.id for m in client.models.list()])
        stream = client.chat.completions.create(
            model="local-dsa",
            messages=[{"role": "user", "content": "What is 17 + 25?"}],
            tools=[ADD],
            stream=True,
            extra_body={"thinking": {"type": "enabled"}},
        )
        for chunk in stream:
            if chunk.choices:
                delta = chunk.choices[0].delta
                text = (delta.model_extra or {}).get("reasoning_content") or delta.content or ""
                print(text, end="", flush=True)
                for call in delta.tool_calls or []:
                    print(
                        f"\n[tool call {call.index}] {call.function.name or ''}{call.function.arguments or ''}"
                    )
                if chunk.choices[0].finish_reason:
                    print(f"\nfinish_reason: {chunk.choices[0].finish_reason}")
            if chunk.usage:
                print(
                    f"usage: {chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} completion tokens"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None)
    main(parser.parse_args().checkpoint)
