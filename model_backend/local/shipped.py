"""The shipped model as a backend: the checkpoint packaged with agentkit, driven the way it was trained to be.

Why a factory and not just `LocalDSABackend()`: evaluations, the demo and the tests must compare like with like, so
they all decode deterministically (temperature 0); the thinking mode, `max_tokens` and the beam width come from the
checkpoint's manifest, which records the settings it was trained and measured with. The agent side of those settings
(system prompt, turn limit) needs the eval harness, a layer above the backends: `agentkit.training.agent_factory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backend import SHIPPED_CHECKPOINT, LocalDSABackend


def shipped_backend(checkpoint: str | Path | None = None, **overrides: Any) -> LocalDSABackend:
    """A deterministic (temperature 0) `LocalDSABackend` over the shipped checkpoint (or `checkpoint`); thinking,
    `max_tokens` and the beam width come from the checkpoint's manifest. Keyword overrides go to `LocalDSABackend`."""
    return LocalDSABackend(checkpoint or SHIPPED_CHECKPOINT, **{"temperature": 0.0, **overrides})
