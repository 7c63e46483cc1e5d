"""The backend contract, re-exported from agentkit (which owns it so that agentkit depends on nothing of ours)."""

from agentkit.backend import ChatDelta, ChatRequest, ModelBackend, ResponseAssembler, ToolCallFragment, Usage

__all__ = ["ChatDelta", "ChatRequest", "ModelBackend", "ResponseAssembler", "ToolCallFragment", "Usage"]
