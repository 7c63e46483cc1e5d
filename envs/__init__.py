"""Synthetic, verifiable, multi-step tool-use environments (DESIGN §6).

Table of contents:
- `spec`: the JSON data model (`TaskRecord` = `Environment` + `Task` + `Solution` + `Verifier`) and JSONL I/O.
- `runtime`: `Episode` (agentkit `Tool`s over a private copy of the state, call log, scoring) and `execute`.
- `generator`: families x difficulty -> checked tasks (solvable, non-trivial, no leaks, deterministic, unique).
- `families/<name>/`: one folder per domain: data model, tools and task templates side by side.
- `trajectories`: a task's reference solution rendered as an agentkit chat transcript (training data).
- `cli`: `agentkit envs generate | check | show | trajectories`.
"""

from agentkit.envs.errors import EnvError, GenerationError, SpecError, ToolCallError
from agentkit.envs.spec import (
    SCHEMA_VERSION,
    Call,
    Environment,
    Solution,
    Task,
    TaskRecord,
    ToolSpec,
    Verifier,
)

__all__ = [
    "SCHEMA_VERSION",
    "Call",
    "EnvError",
    "Environment",
    "GenerationError",
    "Solution",
    "SpecError",
    "Task",
    "TaskRecord",
    "ToolCallError",
    "ToolSpec",
    "Verifier",
]
