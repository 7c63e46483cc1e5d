"""The agent loop: the model thinks and calls tools, the tools run concurrently, the model reads and answers.

One visible sequence of steps per turn (`_one_turn`): build the request, stream the response while re-emitting its
deltas, assemble the message, run its tool calls concurrently, append the results in call order. Everything that can
stop a run (max_turns, the deadline, an error, cancellation) still returns or leaves behind what was done so far.

Tool calls run only after the model's response is complete, and each exactly once: a stream that dies after a tool
call began to arrive ends the run with an error rather than being replayed, so a call can never run twice.

Each turn has one `RetryBudget`, handed to the backend in `ChatRequest.retry`: the backend's retries (before it
delivered anything) and the loop's (a stream cut midway) draw on the same attempts, window and deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkit import tracing
from agentkit.approval import ApprovalCallback, Decision, decide
from agentkit.backend import ChatRequest, ModelBackend, ResponseAssembler, Usage
from agentkit.context import ContextPolicy, ContextWindow
from agentkit.context import resolve as resolve_context
from agentkit.errors import (
    AgentkitError,
    BackendError,
    ConfigurationError,
    OutputValidationError,
    ToolSourceError,
)
from agentkit.events import (
    AssistantTurn,
    Event,
    Final,
    ReasoningDelta,
    RunResult,
    RunStatus,
    TextDelta,
    ToolCallDelta,
    ToolResult,
    TurnRetry,
    TurnStart,
)
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage
from agentkit.output import OutputSpec
from agentkit.pricing import ModelPrice, cost_of
from agentkit.retry import RetryBudget, RetryPolicy
from agentkit.tools import RunContext, Tool, ToolOutput, Toolset, describe_exception, set_current_run
from agentkit.toolsource import ToolSource, is_tool_source
from agentkit.tracing import Observer

log = logging.getLogger("agentkit")

Task = str | Sequence[Message] | None
Approvals = Mapping[str, Decision] | None


@dataclass
class _RunState:
    messages: list[Message]
    toolset: Toolset
    tool_specs: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    attempts: int = 0
    warned_usage: bool = False
    answered: bool = False  # a typed output was accepted
    output: Any = None
    output_failures: int = 0
    output_error: str = ""
    first_new: int = 0  # where this run's messages begin (after the history)
    obs: Observer | None = None  # tracing / run log of this run; None when both are off
    approvals: Mapping[str, Decision] | None = None
    pending: list[ToolCall] = field(default_factory=list)
    context: ContextWindow | None = None  # what is sent when the prompt nears the window (agentkit.context)


class _StopRun(Exception):
    def __init__(self, status: RunStatus, error: BaseException | None = None) -> None:
        self.status = status
        self.error = error


class Agent:
    """A model plus tools plus the rules of a run.

    `thinking=None` leaves thinking to the model's default; True/False asks the backend to switch it on or off (each
    provider profile knows how). `deadline` is the wall-clock budget of one run in seconds; `tool_timeout` caps every
    tool call on top of each tool's own timeout. `retry` is the retry policy of each turn (default: the backend's
    `retry_policy`, else `RetryPolicy()`); `stream_retries` optionally caps how often the loop itself re-streams a cut
    response within that budget. `context_policy` shrinks what is sent when the prompt nears the model's window
    (`agentkit.context`; "auto": on where the backend knows its window, None: off).
    """

    def __init__(
        self,
        model: ModelBackend,
        tools: Iterable[Tool | ToolSource | Callable[..., Any]] = (),
        *,
        system_prompt: str | None = None,
        thinking: bool | None = None,
        max_turns: int = 20,
        tool_timeout: float | None = None,
        deadline: float | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        reasoning_effort: str | None = None,
        pricing: dict[str, ModelPrice] | None = None,
        retry: RetryPolicy | None = None,
        stream_retries: int | None = None,
        output_type: Any = None,
        output_retries: int = 2,
        name: str = "agent",
        approve: ApprovalCallback | None = None,
        context_policy: ContextPolicy | str | None = "auto",
    ) -> None:
        if max_turns < 1:
            raise ConfigurationError("max_turns must be at least 1")
        self.model = model
        self.name = name
        self.approve = approve
        tools = list(tools) if not isinstance(tools, Toolset) else tools
        self.sources: list[ToolSource] = [t for t in tools if is_tool_source(t)]  # type: ignore[misc]
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(t for t in tools if not is_tool_source(t))
        self.system_prompt = system_prompt
        self.thinking = thinking
        self.max_turns = max_turns
        self.tool_timeout = tool_timeout
        self.deadline = deadline
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.reasoning_effort = reasoning_effort
        self.pricing = pricing
        self.retry = retry or getattr(model, "retry_policy", None) or RetryPolicy()
        self.stream_retries = stream_retries
        self.output = OutputSpec(output_type, retries=output_retries) if output_type is not None else None
        if self.output is not None and self.output.tool_name in self.toolset:
            raise ConfigurationError(f"a tool is named {self.output.tool_name!r}, the final-answer tool of output_type")
        self._tool_specs = self._specs(self.toolset)
        self.context_policy = resolve_context(context_policy, model)  # type: ignore[arg-type]

    # -- public API ---------------------------------------------------------------------------------------------------

    async def run(
        self, task: Task = None, *, history: Sequence[Message] | None = None, approvals: Approvals = None
    ) -> RunResult:
        """Run to the end and return the result. Cancelling the calling task cancels the run (and re-raises).

        `history` continues a conversation: pass `previous.messages` and the next `task`; the transcript goes back
        whole and the provider's wire policy decides which earlier reasoning travels."""
        result: RunResult | None = None
        async with contextlib.aclosing(self.stream(task, history=history, approvals=approvals)) as events:
            async for event in events:
                if isinstance(event, Final):
                    result = event.result
        assert result is not None
        return result

    def run_sync(
        self, task: Task = None, *, history: Sequence[Message] | None = None, approvals: Approvals = None
    ) -> RunResult:
        """`run` for scripts. Ctrl-C stops the stream and the tools and returns the partial result (`cancelled`)."""
        holder: list[RunResult] = []

        async def main() -> RunResult:
            state = self._new_state(task, history, approvals)
            try:
                async with contextlib.aclosing(self._events(state)) as events:
                    async for event in events:
                        if isinstance(event, Final):
                            holder.append(event.result)
            except asyncio.CancelledError:
                return self._result(state, "cancelled")
            return holder[-1]

        return asyncio.run(main())

    def stream(
        self, task: Task = None, *, history: Sequence[Message] | None = None, approvals: Approvals = None
    ) -> AsyncGenerator[Event, None]:
        """The run as events; the last one is `Final`. Closing the iterator early stops the model and the tools.
        `approvals` ({call id: True, False or a reason}) resumes a run that ended `pending_approval`."""
        return self._events(self._new_state(task, history, approvals))

    # -- the run ------------------------------------------------------------------------------------------------------

    def _new_state(self, task: Task, history: Sequence[Message] | None = None, approvals: Approvals = None) -> _RunState:
        messages: list[Message] = list(history or ())
        first_new = len(messages)
        if isinstance(task, str):
            messages.append(UserMessage(content=task))
        elif task is not None:
            messages.extend(task)
        if not messages:
            raise ConfigurationError("a run needs a task: pass a string or a non-empty list of messages")
        prompt = self.system_prompt
        if self.output is not None:
            prompt = f"{prompt}\n\n{self.output.instructions()}" if prompt else self.output.instructions()
        if prompt and not isinstance(messages[0], SystemMessage):
            messages.insert(0, SystemMessage(content=prompt))
            first_new += 1
        context = ContextWindow(self.context_policy) if self.context_policy is not None else None
        return _RunState(messages=messages, first_new=first_new, approvals=approvals, toolset=self.toolset,
                         tool_specs=self._tool_specs, context=context)  # fmt: skip

    async def _events(self, state: _RunState) -> AsyncGenerator[Event, None]:
        run_ctx = RunContext()
        deadline = state.started + self.deadline if self.deadline is not None else None
        status: RunStatus = "max_turns"
        error: BaseException | None = None
        acquired: list[ToolSource] = []
        state.obs = obs = tracing.observer(self.name, self.model.model)
        if obs is not None:
            obs.run_start(run_ctx.run_id)
        try:
            for source in self.sources:
                await self._acquire(source, acquired)
            if acquired:
                await self._list_tools(state, acquired)
            last = state.messages[-1]
            if isinstance(last, AssistantMessage) and last.tool_calls:  # resuming a run that waited for approvals
                async for event in self._run_tools(state, last.tool_calls, run_ctx, deadline):
                    yield event
            while state.turns < self.max_turns and not state.answered:
                state.turns += 1
                if acquired and any(s.tools_changed for s in acquired):
                    await self._list_tools(state, acquired)
                async for event in self._one_turn(state, run_ctx, deadline):
                    yield event
                if state.answered:
                    status = "completed"
                    break
                last = state.messages[-1]
                if isinstance(last, AssistantMessage) and not last.tool_calls:
                    if self.output is None or self._take_text_answer(state, last):
                        status = "completed"
                        break
                if self.output is not None and state.output_failures > self.output.retries:
                    raise _StopRun("error", OutputValidationError(
                        f"no valid answer for output_type after {state.output_failures} tries: {state.output_error}"
                    ))
            if state.answered:
                status = "completed"
        except _StopRun as stop:
            status, error = stop.status, stop.error
        finally:
            for source in reversed(acquired):
                try:
                    await source.release()
                except Exception as exc:  # noqa: BLE001 - a source that fails to stop must not lose the result
                    log.warning("tool source %r failed to stop: %s", source.name, describe_exception(exc))
            cleanup_errors = await run_ctx.aclose()
            for exc in cleanup_errors:
                log.warning("a tool cleanup failed: %s", exc)
        result = self._result(state, status, error)
        if obs is not None:
            obs.run_end(result)
        yield Final(result)

    async def _acquire(self, source: ToolSource, acquired: list[ToolSource]) -> None:
        try:
            await source.acquire()
        except Exception as exc:  # noqa: BLE001 - a source that cannot start ends the run with a clear error
            raise _StopRun("error", ToolSourceError(f"tool source {source.name!r} could not start: {exc}")) from exc
        acquired.append(source)

    async def _list_tools(self, state: _RunState, sources: list[ToolSource]) -> None:
        """The run's tools: the agent's own plus what each source lists now (once per run, again on a change)."""
        listed: list[Tool] = list(self.toolset)
        for source in sources:
            try:
                listed.extend(await source.list_tools())
            except Exception as exc:  # noqa: BLE001
                raise _StopRun(
                    "error", ToolSourceError(f"tool source {source.name!r} could not list its tools: {exc}")
                ) from exc
        try:
            state.toolset = Toolset(listed)
        except AgentkitError as exc:
            raise _StopRun("error", exc) from exc
        state.tool_specs = self._specs(state.toolset)

    def _specs(self, toolset: Toolset) -> list[dict[str, Any]]:
        specs = toolset.specs()
        return specs + [self.output.tool_spec()] if self.output is not None else specs

    def _take_text_answer(self, state: _RunState, message: AssistantMessage) -> bool:
        """A plain answer under `output_type`: accepted if it validates, else the errors go back to the model."""
        assert self.output is not None
        ok, value = self.output.from_text(message.content)
        if ok:
            state.answered, state.output = True, value
            return True
        state.output_failures += 1
        state.output_error = value
        state.messages.append(UserMessage(content=value))
        return False

    async def _one_turn(
        self, state: _RunState, run_ctx: RunContext, deadline: float | None
    ) -> AsyncIterator[Event]:
        yield TurnStart(state.turns)
        budget = RetryBudget(self.retry, deadline=deadline)
        if state.context is None:
            messages = list(state.messages)
        else:
            messages = state.context.messages(state.messages, state.first_new, state.tool_specs)
        request = ChatRequest(
            messages=messages,
            tools=state.tool_specs,
            thinking=self.thinking,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            reasoning_effort=self.reasoning_effort,
            retry=budget,
        )
        restreams = 0
        token = state.obs.model_start(state.turns) if state.obs is not None else None
        try:
            while True:
                assembler = ResponseAssembler()
                before = budget.attempts
                try:
                    async for event in self._stream_response(request, assembler, deadline):
                        yield event
                    break
                except BackendError as exc:
                    if budget.attempts == before:
                        budget.start_attempt()  # a backend that does not draw on the budget itself
                    if not exc.retryable or assembler.saw_tool_calls:
                        raise _StopRun("error", exc) from exc
                    if self.stream_retries is not None and restreams >= self.stream_retries:
                        raise _StopRun("error", exc) from exc
                    wait = budget.next_wait(exc.retry_after)
                    if wait is None:
                        raise _StopRun("error", exc) from exc
                    restreams += 1
                    yield TurnRetry(state.turns, str(exc), budget.attempts + 1, wait)
                    await asyncio.sleep(wait)
                except AgentkitError as exc:
                    raise _StopRun("error", exc) from exc
                except TimeoutError as exc:
                    raise _StopRun("deadline") from exc
                except Exception as exc:  # a backend bug must not lose the transcript
                    log.error("model backend failed unexpectedly: %s", type(exc).__name__)
                    raise _StopRun("error", exc) from exc
                else:
                    if budget.attempts == before:
                        budget.start_attempt()
        except _StopRun as stop:
            if state.obs is not None:
                state.obs.model_end(token, state.turns, assembler.usage, None, stop.error or TimeoutError("deadline"))
            raise
        finally:
            state.attempts += max(budget.attempts, 1)
        if state.obs is not None:
            state.obs.model_end(token, state.turns, assembler.usage, assembler.finish_reason, None)
        message = assembler.message(call_id_prefix=f"call_{state.turns}")
        if state.context is not None:
            state.context.observe(assembler.usage.prompt_tokens if assembler.usage is not None else None)
        if assembler.usage is not None:
            state.usage = state.usage + assembler.usage
        else:
            state.usage.unreported += 1
            if not state.warned_usage:
                state.warned_usage = True
                log.warning("%s reported no token usage for a response: usage and cost are a lower bound", self.model.model)
        state.usage.requests += 1
        state.messages.append(message)
        yield AssistantTurn(state.turns, message, assembler.usage)
        if message.tool_calls:
            async for event in self._run_tools(state, message.tool_calls, run_ctx, deadline):
                yield event

    async def _stream_response(
        self, request: ChatRequest, assembler: ResponseAssembler, deadline: float | None
    ) -> AsyncIterator[Event]:
        """Re-emit the backend's deltas as events. The deadline scope never spans a `yield` (it would hit the
        consumer's code instead of ours)."""
        async with contextlib.aclosing(self.model.stream(request)) as deltas:  # type: ignore[type-var]
            iterator = aiter(deltas)
            while True:
                try:
                    if deadline is None:
                        delta = await anext(iterator)
                    else:
                        async with asyncio.timeout_at(_loop_time(deadline)):
                            delta = await anext(iterator)
                except StopAsyncIteration:
                    return
                assembler.add(delta)
                if delta.reasoning:
                    yield ReasoningDelta(delta.reasoning)
                if delta.content:
                    yield TextDelta(delta.content)
                for frag in delta.tool_calls:
                    yield ToolCallDelta(frag.index, frag.id, frag.name, frag.arguments)

    async def _run_tools(
        self, state: _RunState, calls: list[ToolCall], run_ctx: RunContext, deadline: float | None
    ) -> AsyncIterator[Event]:
        """Run every call of one response concurrently; emit results as they finish; append them in call order."""
        refused: dict[int, ToolOutput] = {}
        if self._needs_approval(state.toolset, calls):
            refused, state.pending = await decide(calls, state.toolset, state.approvals, self.approve)
            if state.pending:
                raise _StopRun("pending_approval")
        ctx = contextvars.copy_context()
        ctx.run(set_current_run, run_ctx)
        tasks = {
            asyncio.get_running_loop().create_task(self._call_tool(state, call), context=ctx.copy()): i
            for i, call in enumerate(calls)
            if i not in refused
        }
        outputs: dict[int, tuple[ToolOutput, float]] = {i: (out, 0.0) for i, out in refused.items()}
        for i, out in refused.items():
            yield ToolResult(calls[i], out.content, out.is_error, 0.0)
        pending = set(tasks)
        try:
            while pending:
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise _StopRun("deadline")
                for task in done:
                    i = tasks[task]
                    outputs[i] = task.result()
                    out, took = outputs[i]
                    yield ToolResult(calls[i], out.content, out.is_error, took)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            # Keep the transcript well-formed even when stopped: every call gets a result message.
            for i, call in enumerate(calls):
                out, _ = outputs.get(
                    i, (ToolOutput("Tool call was cancelled before it finished.", True), 0.0)
                )
                state.tool_calls += 1
                state.tool_errors += out.is_error
                state.messages.append(
                    ToolMessage(
                        tool_call_id=call.id, name=call.name, content=out.content, is_error=out.is_error
                    )
                )

    @staticmethod
    def _needs_approval(toolset: Toolset, calls: list[ToolCall]) -> bool:
        for call in calls:
            found = toolset.get(call.name)
            if found is not None and found.requires_approval:
                return True
        return False

    async def _call_tool(self, state: _RunState, call: ToolCall) -> tuple[ToolOutput, float]:
        if state.obs is None:
            return await self._call_tool_plain(state, call)
        found = state.toolset.get(call.name)
        secret = found.secret_args if found is not None else frozenset()
        with state.obs.tool_call(call.name, call.id, call.arguments, secret) as outcome:
            out, took = await self._call_tool_plain(state, call)
            outcome["is_error"] = out.is_error
        return out, took

    async def _call_tool_plain(self, state: _RunState, call: ToolCall) -> tuple[ToolOutput, float]:
        start = time.monotonic()
        toolset = state.toolset
        if self.output is not None and call.name == self.output.tool_name:
            ok, value = self.output.from_arguments(call.arguments)
            if ok:
                state.answered, state.output = True, value
                return ToolOutput("Final answer accepted."), time.monotonic() - start
            state.output_failures += 1
            state.output_error = value
            return ToolOutput(value, True), time.monotonic() - start
        try:
            if self.tool_timeout is None:
                out = await toolset.call(call.name, call.arguments)
            else:
                async with asyncio.timeout(self.tool_timeout):
                    out = await toolset.call(call.name, call.arguments)
        except TimeoutError:
            out = ToolOutput(
                f"Tool '{call.name}' timed out after {self.tool_timeout:g} s and was stopped.", True
            )
        except Exception as exc:  # noqa: BLE001 - a misbehaving tool ends its call, never the run
            out = ToolOutput(f"Tool '{call.name}' failed: {describe_exception(exc)}", True)
        return out, time.monotonic() - start

    def _result(self, state: _RunState, status: RunStatus, error: BaseException | None = None) -> RunResult:
        output: Any = None
        if self.output is not None:
            output = state.output
        else:
            for m in reversed(state.messages[state.first_new :]):
                if isinstance(m, AssistantMessage):
                    output = m.content
                    break
        return RunResult(
            status=status,
            output=output,
            messages=state.messages,
            usage=state.usage,
            cost=cost_of(self.model.model, state.usage, self.pricing),
            turns=state.turns,
            tool_calls=state.tool_calls,
            tool_errors=state.tool_errors,
            attempts=state.attempts,
            wall_time=time.monotonic() - state.started,
            error=str(error) if error is not None else None,
            error_type=type(error).__name__ if error is not None else None,
            pending=list(state.pending),
        )


def _loop_time(deadline_monotonic: float) -> float:
    """Convert a time.monotonic() deadline to the event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline_monotonic - time.monotonic())
