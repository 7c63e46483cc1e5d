"""Errors of the environment package, all under `agentkit.errors.AgentkitError`.

Two kinds matter: a tool call the model got wrong (`ToolCallError`, returned to the model as an error result, never
raised out of an episode) and bad input files (`SpecError`, with the line number so a user can fix the file).
"""

from __future__ import annotations

from agentkit.errors import AgentkitError


class EnvError(AgentkitError):
    """Base class of every error raised by `agentkit.envs`."""


class SpecError(EnvError):
    """A task record is malformed, has the wrong schema version, or names an unknown family/operation."""


class ToolCallError(EnvError):
    """Raised by a tool implementation for a call the model can fix (unknown id, bad value, missing record).

    The runtime turns it into an error result whose text is shown to the model, exactly like a real API's 4xx body.
    """


class GenerationError(EnvError):
    """A family cannot build a task (a bug in a template); the generator counts it as a discard reason."""
