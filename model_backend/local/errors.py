"""Errors of the local DSA model, rooted in agentkit's single hierarchy."""

from __future__ import annotations

from agentkit.errors import AgentkitError, ConfigurationError


class LocalModelError(AgentkitError):
    """Base class of the local model's errors."""


class CheckpointError(LocalModelError, ConfigurationError):
    """A checkpoint file is missing, unreadable, or does not fit the model it is loaded into: a configuration error
    too (the user named a wrong path or file), so the CLI exits 2 with the message, as for any bad setting."""


class CacheCapacityError(LocalModelError):
    """A forward pass would write past the end of the decoding cache or the model's position table."""
