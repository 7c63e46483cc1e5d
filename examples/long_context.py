"""Context that fits: a long run whose prompt would overflow the model's window completes, because old tool results
are dropped (each leaves a short note) before the prompt reaches the window. Runs offline against agentkit's scripted
DeepSeek server, which enforces V4's thinking-mode rule and refuses a prompt over its window like the real API.

    python examples/long_context.py

With DeepSeek's API the policy is on by default (the window is in the provider table): nothing to configure. Choose
another strategy with `Agent(..., context_policy=ContextPolicy(strategy="summary" | "restart"))`.
"""

import json

from agentkit import Agent, tool
from agentkit.backends.providers import ModelRules
from agentkit.backends.remote import RemoteBackend
from agentkit.messages import DEEPSEEK_V4
from agentkit.testing.scripted_server import Fail, Reply, ScriptedServer

WINDOW = 4000  # tokens: tiny, so the example overflows quickly


@tool
def read_chapter(n: int) -> str:
    """Read one chapter of a long report."""
    return f"chapter {n}: " + "findings and figures " * 100


def model(body: dict) -> Reply | Fail:
    """A model that reads 15 chapters, then answers; its server refuses a prompt over the window."""
    prompt = sum(len(json.dumps(m)) for m in body["messages"]) // 4
    if prompt > WINDOW:
        return Fail(400, f"This model's maximum context length is {WINDOW} tokens; the prompt has {prompt}")
    read = sum(1 for m in body["messages"] if m["role"] == "tool")
    if read < 15:
        return Reply(reasoning=f"chapter {read} next", tool_calls=[("read_chapter", json.dumps({"n": read}))])
    return Reply(reasoning="all read", content="The report has 15 chapters.")


def main() -> None:
    with ScriptedServer(model, enforce="deepseek-v4") as server:
        # The provider table knows DeepSeek's windows; here the model's window is set small for the demo.
        backend = RemoteBackend("deepseek", "deepseek-v4-flash", base_url=server.base_url, api_key="sk-demo",
                                model_rules={"deepseek-v4-flash": ModelRules(DEEPSEEK_V4, thinks_by_default=True,
                                                                             context_window=WINDOW)})  # fmt: skip
        agent = Agent(backend, [read_chapter], max_turns=20)
        print("context policy:", agent.context_policy)
        result = agent.run_sync("Read the whole report and tell me how long it is.")
        biggest = max(sum(len(json.dumps(m)) for m in r["messages"]) // 4 for r in server.requests)
        last = server.requests[-1]["messages"]
        notes = [m["content"] for m in last if m["role"] == "tool" and m["content"].startswith("[result dropped")]
        print(f"{result.status}: {result.output}")
        print(f"largest prompt sent: {biggest} tokens (window {WINDOW}); {len(notes)} old results sent as a note:")
        print(f"  {notes[0] if notes else '-'}")
        print(f"the transcript still has all {result.tool_calls} results in full")


if __name__ == "__main__":
    main()
