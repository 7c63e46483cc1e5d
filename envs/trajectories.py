"""A task's reference solution as a chat transcript in agentkit messages: the training data of the local model.

The transcript is produced by *executing* the reference through the runtime, so every tool result in it is what the
environment really returns. Layout: system prompt (the family's persona, the rules, and the tools as JSON), the user
instruction, then per call an assistant turn (short reasoning + one tool call) and its tool result, and a final
assistant turn with the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentkit.envs.families import families
from agentkit.envs.generator import capabilities
from agentkit.envs.packages.format import is_package_record
from agentkit.envs.runtime import ToolResult, Workspace, call_tool
from agentkit.envs.spec import Call, TaskRecord
from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    dump_messages,
)

RULES = (
    "Work only through the tools. Look values up instead of guessing them, change nothing you were not asked to "
    "change, and finish with a short answer for the user."
)


@dataclass(frozen=True)
class RenderStyle:
    """How a reference's thinking and arguments are written when it becomes a training trajectory: data design
    for one model (its tokenizer, what it copies well), kept here so the task set stays the same for every model.

    The default writes the reference as the task set holds it. `LOCAL_MODEL` is the shipped local model's."""

    restate_anchors: bool = False
    """Open a step's thought with the task phrase it hinges on (`Call.anchor`: "The total units sold in the north
    region during March 2025: March 2025 is 2025-03. ..."), so the value the step needs is written as the
    continuation of a phrase the model has just read rather than from a bare start (opening on a bare month
    name, the small model wrote the wrong month in 20 of 37 failed spending tasks; docs/quality_history.md)."""
    space_before_expression: bool = False
    """Write a calculator expression with a leading space. Byte-level BPE splits a number by what precedes it
    (` 782336` is ` 7|8|23|36`; right after the DSML parameter tag's `>` it is `78|23|36`), and every value the
    agent copies from follows a space; opening on the tag, the first number was the one the small model got wrong.
    The calculator strips the space."""

    def thought(self, call: Call) -> str:
        if self.restate_anchors and call.anchor:
            return f"{call.anchor}: {call.thought}" if call.thought else f"{call.anchor}."
        return call.thought[:1].upper() + call.thought[1:]

    def arguments(self, record: TaskRecord, call: Call) -> dict[str, Any]:
        spec = record.environment.tool(call.tool)
        if not (self.space_before_expression and spec is not None and spec.impl == "kit.calculate"):
            return call.arguments
        names = [actual for actual, canon in spec.config.get("params", {}).items() if canon == "expression"]
        return {k: " " + v.lstrip() if k in names and isinstance(v, str) else v for k, v in call.arguments.items()}


PLAIN = RenderStyle()
LOCAL_MODEL = RenderStyle(restate_anchors=True, space_before_expression=True)


def tool_specs(record: TaskRecord) -> list[dict[str, Any]]:
    """The environment's tools in the OpenAI function-tool format (what a chat request's `tools` carries)."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in record.environment.tools
    ]


def system_prompt(record: TaskRecord) -> str:
    fam = families().get(record.environment.family)
    persona = fam.persona if fam else "You are a careful assistant that uses tools."
    tools = json.dumps(tool_specs(record), ensure_ascii=False, indent=None)
    return f"{persona}\n{RULES}\n\n## Tools\n{tools}"


def render(record: TaskRecord, style: RenderStyle = PLAIN) -> list[Message]:
    """Execute the reference and render the full transcript, its thinking and arguments written in `style`."""
    env = record.environment
    search, python = capabilities(env)
    ws = Workspace(env.state)
    messages: list[Message] = [SystemMessage(content=system_prompt(record)),
                               UserMessage(content=record.task.instruction)]
    writes: list[str] = []
    recorded = record.meta.get("package", {}).get("results") if is_package_record(record) else None
    for i, call in enumerate(record.solution.calls):
        call_id = f"call_{i + 1}"
        if recorded is not None:  # a package's tools are model-written: never run here, the gates recorded them
            result = ToolResult(call.tool, call.arguments, recorded[i]["result"], bool(recorded[i]["error"]))
        else:
            result = call_tool(env, ws, call.tool, call.arguments, search=search, python=python)
        args = json.dumps(style.arguments(record, call), ensure_ascii=False)
        messages.append(AssistantMessage(content=None, reasoning_content=style.thought(call) or None,
                                         tool_calls=[ToolCall(id=call_id, name=call.tool, arguments=args)]))
        messages.append(ToolMessage(tool_call_id=call_id, name=call.tool, content=result.content,
                                    is_error=result.is_error))
        spec = env.tool(call.tool)
        if spec is not None and spec.writes:
            writes.append(f"{call.tool}({', '.join(f'{k}={v!r}' for k, v in call.arguments.items())})")
    final = record.solution.answer
    if final is None:
        final = "Done. " + (f"I made {len(writes)} change(s)." if writes else "Nothing needed changing.")
    elif writes:
        final = f"{final} I also made the {len(writes)} requested change(s)."
    messages.append(AssistantMessage(content=final, reasoning_content=record.solution.thought or None))
    return messages


def to_training_line(record: TaskRecord, style: RenderStyle = PLAIN) -> dict[str, Any]:
    """One JSONL line for training: ids, the tools and the transcript (messages as plain dicts)."""
    return {
        "task_id": record.task.task_id,
        "family": record.task.family,
        "difficulty": record.task.difficulty,
        "tools": tool_specs(record),
        "messages": dump_messages(render(record, style)),
    }
