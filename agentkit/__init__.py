"""agentkit: agentic tool use in the style of DeepSeek-V3.2.

This module is the core's public surface, in reading order: messages, tools, the backend contract, the loop and
its events, errors. Everything else lives in sub-packages of the same namespace that build on these contracts:
`agentkit.backends` (remote and local models), `agentkit.sandbox`, `agentkit.search`, `agentkit.envs`,
`agentkit.training`; `agentkit.app` is the CLI and `agentkit.testing` the test doubles. One namespace, so a user's
own `tools.py` or `envs/` never shadows ours. Importing agentkit never imports torch or docker.
"""

from agentkit.backend import ChatDelta, ChatRequest, ModelBackend, ToolCallFragment, Usage
from agentkit.context import ContextPolicy
from agentkit.conversation import Conversation
from agentkit.errors import (
    AgentkitError,
    AuthenticationError,
    BackendError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    OutputValidationError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ToolError,
    ToolSourceError,
)
from agentkit.events import (
    AssistantTurn,
    Event,
    Final,
    ReasoningDelta,
    RunResult,
    TextDelta,
    ToolCallDelta,
    ToolResult,
    TurnRetry,
    TurnStart,
)
from agentkit.loop import Agent
from agentkit.messages import (
    AssistantMessage,
    DeveloperMessage,
    Message,
    ReasoningReplay,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    WirePolicy,
    to_wire,
)
from agentkit.pricing import ModelPrice
from agentkit.retry import RetryPolicy
from agentkit.tools import RunContext, Tool, ToolOutput, Toolset, current_run, tool
from agentkit.toolsource import ToolSource

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentkitError",
    "AssistantMessage",
    "AssistantTurn",
    "AuthenticationError",
    "BackendError",
    "BadRequestError",
    "ChatDelta",
    "ChatRequest",
    "ConfigurationError",
    "ContextLengthError",
    "ContextPolicy",
    "Conversation",
    "DeveloperMessage",
    "Event",
    "Final",
    "Message",
    "ModelBackend",
    "ModelPrice",
    "OutputValidationError",
    "ProtocolError",
    "RateLimitError",
    "ReasoningDelta",
    "ReasoningReplay",
    "RetryPolicy",
    "RunContext",
    "RunResult",
    "ServerError",
    "SystemMessage",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFragment",
    "ToolError",
    "ToolMessage",
    "ToolOutput",
    "ToolResult",
    "ToolSourceError",
    "ToolSource",
    "Toolset",
    "TurnRetry",
    "TurnStart",
    "Usage",
    "UserMessage",
    "WirePolicy",
    "current_run",
    "to_wire",
    "tool",
]
