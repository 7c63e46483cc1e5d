"""agentkit: agentic tool use in the style of DeepSeek-V3.2.

The whole public surface, in reading order: messages, tools, the backend contract, the loop and its events, errors.
Backends (`agentkit.backends`), shipped tools (`tools`) and environments (`agentkit.envs`) are separate packages that build on
these contracts; importing agentkit never imports torch or docker.
"""

from agentkit.backend import ChatDelta, ChatRequest, ModelBackend, ToolCallFragment, Usage
from agentkit.errors import (
    AgentkitError,
    AuthenticationError,
    BackendError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ToolError,
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
    "DeveloperMessage",
    "Event",
    "Final",
    "Message",
    "ModelBackend",
    "ModelPrice",
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
