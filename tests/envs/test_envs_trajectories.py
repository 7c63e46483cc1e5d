"""Reference solutions rendered as agentkit transcripts: well-formed, faithful to execution, loadable."""

from __future__ import annotations

import json

from agentkit.envs.generator import capabilities
from agentkit.envs.runtime import execute
from agentkit.envs.spec import TaskRecord
from agentkit.envs.trajectories import render, to_training_line
from agentkit.messages import (
    AssistantMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
    dump_messages,
    parse_messages,
)


def test_transcripts_follow_the_reference(task_set: list[TaskRecord]) -> None:
    for rec in task_set[::3]:
        msgs = render(rec)
        assert isinstance(msgs[0], SystemMessage) and isinstance(msgs[1], UserMessage)
        assert msgs[1].content == rec.task.instruction
        for spec in rec.environment.tools:  # the system prompt carries every tool
            assert f'"name": "{spec.name}"' in msgs[0].content
        body, final = msgs[2:-1], msgs[-1]
        assert len(body) == 2 * len(rec.solution.calls)
        search, python = capabilities(rec.environment)
        trace = execute(rec.environment, rec.solution.calls, search=search, python=python)
        for i, call in enumerate(rec.solution.calls):
            asst, tool = body[2 * i], body[2 * i + 1]
            assert isinstance(asst, AssistantMessage) and isinstance(tool, ToolMessage)
            assert asst.reasoning_content and len(asst.tool_calls) == 1
            tc = asst.tool_calls[0]
            assert tc.name == call.tool and json.loads(tc.arguments) == call.arguments
            assert tool.tool_call_id == tc.id and tool.name == call.tool
            assert tool.content == trace.results[i].content and not tool.is_error
        assert isinstance(final, AssistantMessage) and not final.tool_calls and final.content
        if rec.verifier.answer is not None:
            assert rec.verifier.answer.check(final.content) is None  # the rendered answer itself passes


def test_training_lines_round_trip_through_agentkit(task_set: list[TaskRecord]) -> None:
    rec = next(r for r in task_set if r.task.family == "dataset")
    line = json.loads(json.dumps(to_training_line(rec)))
    msgs = parse_messages(line["messages"])
    assert dump_messages(msgs) == line["messages"]
    assert [t["function"]["name"] for t in line["tools"]] == [t.name for t in rec.environment.tools]
    assert line["task_id"] == rec.task.task_id
