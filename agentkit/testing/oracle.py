"""Scripted models that know the answers: the eval harness's reference points, served over real HTTP.

`oracle_script(tasks)` answers every task with its reference solution (one tool call per turn, in order, then the
reference answer), so an honest harness must score it 100%. `lazy_script` answers at once without tools (it must
score 0% on tasks that need tools). `flaky_script` mixes HTTP 500s and malformed tool arguments (the harness must
record, not crash). Each is a `ScriptedServer` script: `ScriptedServer(oracle_script(tasks))`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from agentkit.envs.spec import TaskRecord


def _key(instruction: str, tools: Sequence[tuple[str, Any]]) -> str:
    """A task's identity as a server sees it: the instruction plus its tools' names and parameter schemas (two tasks
    of a large set can share an instruction, never also their environment's tool signatures)."""
    return instruction + "\x00" + json.dumps(sorted((n, p) for n, p in tools), sort_keys=True)


def _index(tasks: Sequence[TaskRecord]) -> dict[str, TaskRecord]:
    return {_key(t.task.instruction, [(s.name, s.parameters) for s in t.environment.tools]): t for t in tasks}


def _task_for(body: dict[str, Any], index: dict[str, TaskRecord]) -> tuple[TaskRecord | None, int]:
    messages = body.get("messages") or []
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    if last_user < 0:
        return None, 0
    done = sum(1 for m in messages[last_user:] if m.get("role") == "tool")
    tools = [(t["function"]["name"], t["function"].get("parameters", {})) for t in body.get("tools") or []]
    return index.get(_key(messages[last_user].get("content", ""), tools)), done


def oracle_script(tasks: Sequence[TaskRecord]) -> Callable[[dict[str, Any]], Any]:
    from agentkit.testing.scripted_server import Reply

    index = _index(tasks)

    def script(body: dict[str, Any]) -> Any:
        task, done = _task_for(body, index)
        if task is None:
            return Reply(content="I do not know this task.")
        calls = task.solution.calls
        if done < len(calls):
            call = calls[done]
            return Reply(reasoning=call.thought or f"Step {done + 1}.", tool_calls=[(call.tool, json.dumps(call.arguments))])
        return Reply(reasoning=task.solution.thought or "Done.", content=task.solution.answer or "Done.")

    return script


def lazy_script(body: dict[str, Any]) -> Any:
    from agentkit.testing.scripted_server import Reply

    return Reply(content="I have completed the task.")


def flaky_script(tasks: Sequence[TaskRecord]) -> Callable[[dict[str, Any]], Any]:
    """Every third request fails with a 500; every first tool call of a task carries malformed JSON arguments."""
    from agentkit.testing.scripted_server import Fail, Reply

    oracle = oracle_script(tasks)
    index = _index(tasks)
    count = {"n": 0}

    def script(body: dict[str, Any]) -> Any:
        count["n"] += 1
        if count["n"] % 3 == 0:
            return Fail(500, "internal error (flaky test server)")
        task, done = _task_for(body, index)
        reply = oracle(body)
        if task is not None and done == 0 and reply.tool_calls:
            name, args = reply.tool_calls[0]
            return Reply(reasoning="oops", tool_calls=[(name, args[:-1])])  # truncated JSON
        return reply

    return script


def serve_main(argv: Sequence[str] | None = None) -> None:
    """`python -m agentkit.testing.oracle TASKS.jsonl [LATENCY_S]`: serve the oracle in its own process; prints the base URL.

    Benchmarks use it so the server does not share the client's interpreter (and GIL); `GET /v1/_stats` reports
    the server's own time."""
    import sys
    import time

    from agentkit.envs.eval import load_tasks
    from agentkit.testing.scripted_server import ScriptedServer

    args = list(sys.argv[1:] if argv is None else argv)
    tasks = load_tasks(args[0])
    with ScriptedServer(oracle_script(tasks), latency=float(args[1]) if len(args) > 1 else 0.0) as srv:
        print(srv.base_url, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    serve_main()
