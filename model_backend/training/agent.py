"""How agents drive the trained model: the system prompt it is trained with and the settings it is measured with.

Why here and not beside the backend: the agent factory builds on the eval harness (`agentkit.envs.eval`), a layer
above the backends; the backend half of the settings (`agentkit.backends.local.shipped_backend`) reads them from
the checkpoint's manifest, where training writes `AGENT_SETTINGS`.
"""

from __future__ import annotations

from typing import Any

from agentkit.envs.eval import DEFAULT_SYSTEM_PROMPT

SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT
"""The model is trained with the eval harness's default system prompt (one definition, in envs.eval), so agents
driving it should use it."""


AGENT_SETTINGS: dict[str, Any] = {"system_prompt": SYSTEM_PROMPT, "thinking": True, "max_turns": 12, "max_tokens": 320,
                                  "beams": 4}  # fmt: skip
"""How agents should drive the shipped model: the prompt and mode it was trained with, limits that stop a derailed
run early (a d1-3 reference needs at most 7 turns and about 150 tokens per turn), and the beam width of each turn
(beam.py: a few beams keep one unlucky token from derailing a turn; the widths compared on held-out tasks are in
docs/quality_history.md)."""


def agent_factory(backend: Any, **overrides: Any) -> Any:
    """The eval harness's agent factory with the agent settings the model was trained for (system prompt, thinking,
    max_turns); keyword overrides go to `agentkit.envs.eval.default_agent_factory`."""
    from agentkit.envs.eval import default_agent_factory

    kwargs: dict[str, Any] = {"thinking": AGENT_SETTINGS["thinking"], "max_turns": AGENT_SETTINGS["max_turns"],
                              "system_prompt": AGENT_SETTINGS["system_prompt"], **overrides}  # fmt: skip
    return default_agent_factory(backend, **kwargs)
