"""A conversation: several user turns with one agent, each run continuing the transcript of the one before.

`Agent.run(task, history=previous.messages)` is the whole mechanism; `Conversation` only keeps the messages between
turns. The transcript keeps every reasoning; the backend's wire policy sends back what the provider wants (DeepSeek
V4: the reasoning of every turn that used tools, in all later requests; V3.2 weights: only the current turn's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING

from agentkit.events import Event, Final, RunResult
from agentkit.messages import Message

if TYPE_CHECKING:
    from agentkit.loop import Agent


class Conversation:
    """`conv = Conversation(agent)`, then `await conv.send("...")` per user turn; `conv.messages` is the transcript.

    A turn that did not complete (an error, a deadline) leaves its partial transcript in `messages` too, so the next
    `send` can say "go on"; `reset()` starts over."""

    def __init__(self, agent: Agent, messages: Sequence[Message] = ()) -> None:
        self.agent = agent
        self.messages: list[Message] = list(messages)
        self.results: list[RunResult] = []
        self._runner: asyncio.Runner | None = None

    async def send(self, text: str) -> RunResult:
        result = await self.agent.run(text, history=self.messages)
        self._keep(result)
        return result

    async def stream(self, text: str) -> AsyncGenerator[Event, None]:
        """The turn as events (like `Agent.stream`); the transcript is kept when `Final` arrives."""
        async for event in self.agent.stream(text, history=self.messages):
            if isinstance(event, Final):
                self._keep(event.result)
            yield event

    def send_sync(self, text: str) -> RunResult:
        """`send` for scripts. All turns run on one event loop kept by the conversation (a backend's HTTP client
        belongs to the loop it was first used on); `close()` ends it."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.send(text))

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def reset(self) -> None:
        self.messages, self.results = [], []

    def _keep(self, result: RunResult) -> None:
        self.messages = list(result.messages)
        self.results.append(result)
