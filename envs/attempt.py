"""One attempt at one task, and what an attempt needs to be run anywhere (this process, a shard, a Ray node).

`run_attempt` never raises (cancellation aside): whatever happens becomes an `AttemptRecord`. How it ended is
classified from the run's status and the typed `AgentkitError` that stopped it:
- `completed`: the model gave a final answer; `empty_reply`: its last turn had neither text nor a tool call (it
  did nothing and stopped, which is not finishing); `max_turns`, `deadline`: the run's own limits.
- `error` with `infra=True`: the model or the sandbox could not be reached or kept failing (connection refused,
  timeouts, 5xx or 429 after retries, a wrong URL or key, Docker gone). These are not outcomes of the model:
  the summary counts them apart, the exit code says so, and `--retry-errors` re-runs exactly them.
- `error` otherwise: the agent or a backend failed on this task (a crash, a request the server refused).

`AgentSpec` describes an agent as data (provider, model, URL, settings) so a worker on another machine can build
the same agent over its own backend; a closure over a live HTTP client could not travel.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from agentkit import errors as E
from agentkit import tracing
from agentkit.backend import ChatRequest
from agentkit.envs.results import AttemptRecord, EvalError, compress_transcript
from agentkit.envs.runtime import PACKAGE_IMPL, PYTHON_IMPL, Episode, SandboxPython
from agentkit.envs.spec import TaskRecord
from agentkit.loop import Agent
from agentkit.messages import AssistantMessage, UserMessage

DEFAULT_SYSTEM_PROMPT = (
    "You are an agent that completes tasks by calling the tools you are given. Look up every value you need with the "
    "tools; never guess identifiers or numbers. Make exactly the changes the task asks for and no others. When you "
    "are done, reply with a short final answer that states any value the task asks you to report."
)
DEFAULT_MAX_TURNS = 20

AgentFactory = Callable[[Episode], Agent | Awaitable[Agent]]

_INFRA_CLASSES: tuple[type[BaseException], ...] = (
    E.ConnectionError, E.ServerError, E.RateLimitError, E.AuthenticationError, E.NotFoundError, E.StreamError,
)  # fmt: skip


def _sandbox_errors() -> tuple[type[BaseException], ...]:
    try:
        from agentkit.sandbox.errors import SandboxDied, SandboxUnavailable
    except ImportError:  # pragma: no cover - the sandbox ships with agentkit
        return ()
    return (SandboxUnavailable, SandboxDied)


INFRA_ERROR_TYPES = frozenset(c.__name__ for c in (*_INFRA_CLASSES, *_sandbox_errors()))


def is_infra_error(exc: BaseException | str | None) -> bool:
    """True for a failure of the infrastructure (model server, network, sandbox), not of the model: an exception, or
    the `error_type` name a `RunResult` carries."""
    if exc is None:
        return False
    if isinstance(exc, str):
        return exc in INFRA_ERROR_TYPES
    return isinstance(exc, (*_INFRA_CLASSES, *_sandbox_errors()))


def needs_python(record: TaskRecord) -> bool:
    """True when an attempt needs a sandbox: the python tool, or an environment package's tools and verifier."""
    return any(t.impl in (PYTHON_IMPL, PACKAGE_IMPL) for t in record.environment.tools)


def agent_defaults(backend: Any) -> dict[str, Any]:
    """Settings the backend knows better than our defaults (the local model's manifest: the max turns and system
    prompt it was trained with); {} for a backend that has none."""
    got = getattr(backend, "agent_defaults", None)
    return dict(got) if isinstance(got, dict) else {}


def default_agent_factory(
    backend: Any,
    *,
    thinking: bool | None = None,
    max_turns: int | None = None,
    deadline: float | None = 600.0,
    system_prompt: str | Callable[[TaskRecord], str] | None = None,
    max_tokens: int | None = None,
) -> AgentFactory:
    """Agents over `backend` with the episode's tools and a system prompt (text, or a function of the task: a model
    trained on `agentkit.envs.trajectories` expects the prompt it was trained with). `max_turns` and the prompt
    left as None come from the backend's own defaults where it has them, else 20 turns and our prompt."""
    known = agent_defaults(backend)
    turns = max_turns if max_turns is not None else int(known.get("max_turns", DEFAULT_MAX_TURNS))
    prompt_of = system_prompt if system_prompt is not None else known.get("system_prompt", DEFAULT_SYSTEM_PROMPT)

    def make(episode: Episode) -> Agent:
        prompt = prompt_of(episode.record) if callable(prompt_of) else prompt_of
        return Agent(backend, episode.tools(), system_prompt=prompt, thinking=thinking, max_turns=turns,
                     deadline=deadline, max_tokens=max_tokens)  # fmt: skip

    return make


@dataclass
class AgentSpec:
    """An agent as data: enough for any process (a Ray worker on another node) to build the same agent."""

    provider: str
    model: str | None = None
    base_url: str | None = None
    thinking: bool | None = None
    max_turns: int | None = None
    deadline: float | None = 600.0
    max_retries: int | None = None

    def backend(self) -> Any:
        if self.provider == "local":
            from agentkit.backends.local.backend import LocalDSABackend

            return LocalDSABackend(self.model) if self.model else LocalDSABackend()
        from agentkit.backends.remote import RemoteBackend

        kw: dict[str, Any] = {} if self.max_retries is None else {"max_retries": self.max_retries}
        return RemoteBackend(self.provider, self.model, base_url=self.base_url, **kw)

    def factory(self, backend: Any) -> AgentFactory:
        return default_agent_factory(backend, thinking=self.thinking, max_turns=self.max_turns, deadline=self.deadline)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def preflight(backend: Any, *, patience: float = 60.0) -> None:
    """One small request before the first attempt: a wrong URL, key or model fails here, once, with the server's
    own message, instead of as an error record per attempt. Raises `EvalError`."""
    request = ChatRequest(messages=[UserMessage(content="Reply with the word ready.")], max_tokens=8)
    try:
        async with asyncio.timeout(patience):
            async for _ in backend.stream(request):
                pass
    except TimeoutError:
        raise EvalError(f"the model did not answer a pre-flight request within {patience:g} s; check --base-url "
                        "and that the server is up") from None  # fmt: skip
    except E.AgentkitError as exc:
        raise EvalError(f"the model failed a pre-flight request, so no attempt was run: {exc}") from None


def _empty(message: Any) -> bool:
    return isinstance(message, AssistantMessage) and not message.tool_calls and not (message.content or "").strip()


async def run_attempt(
    record: TaskRecord, attempt: int, factory: AgentFactory, sandbox_pool: Any = None, *, k: int = 1,
    config: dict[str, Any] | None = None,
) -> AttemptRecord:  # fmt: skip
    """One attempt; never raises (cancellation aside): a crash becomes an `error` record. With tracing on, an
    `eval_attempt` span holds the agent run's spans."""
    t = record.task
    with tracing.span(f"eval_attempt {t.task_id}", **{"agentkit.eval.task_id": t.task_id, "agentkit.eval.attempt": attempt,
                                                      "agentkit.eval.family": t.family}) as span:  # fmt: skip
        out = await _run_attempt(record, attempt, factory, sandbox_pool, k=k, config=config)
        if span is not None:
            span.set_attributes({"agentkit.eval.status": out.status, "agentkit.eval.passed": out.passed})
        return out


async def _run_attempt(
    record: TaskRecord, attempt: int, factory: AgentFactory, sandbox_pool: Any, *, k: int,
    config: dict[str, Any] | None,
) -> AttemptRecord:  # fmt: skip
    t = record.task
    base = AttemptRecord(t.task_id, attempt, t.family, t.difficulty, passed=False, status="error", k=k,
                         config=dict(config or {}))  # fmt: skip
    started = time.monotonic()
    sandbox = None
    try:
        python = None
        if needs_python(record):
            if sandbox_pool is None:
                raise EvalError("this task needs the Python sandbox, but no sandbox pool is available (is Docker running?)")
            sandbox = await sandbox_pool.acquire()
            python = SandboxPython(sandbox)
        episode = Episode(record, python=python, sandbox=sandbox)
        made = factory(episode)
        agent = await made if inspect.isawaitable(made) else made
        result = await agent.run(t.instruction)
        verdict = await episode.ascore(result.output)
        u = result.usage
        status = result.status
        if status == "completed" and result.messages and _empty(result.messages[-1]):
            status = "empty_reply"
        base.status = status
        base.passed = verdict.passed and status in ("completed", "empty_reply")
        base.failures = list(verdict.failures)
        if status == "empty_reply":
            base.failures.insert(0, "the model's last turn had neither text nor a tool call (it stopped without an answer)")
        elif status != "completed":
            base.failures.insert(0, f"run ended with status {status}" + (f": {result.error}" if result.error else ""))
        base.error, base.error_type = result.error, result.error_type
        base.infra = status == "error" and is_infra_error(result.error_type)
        base.turns, base.tool_calls, base.tool_errors = result.turns, result.tool_calls, result.tool_errors
        base.prompt_tokens, base.completion_tokens = u.prompt_tokens, u.completion_tokens
        base.reasoning_tokens, base.cache_hit_tokens = u.reasoning_tokens, u.cache_hit_tokens
        base.cost, base.output = result.cost, result.output
        base.diff = episode.diff()
        base.transcript_z = compress_transcript(result.messages)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one crashing task must not end the eval
        base.status, base.error, base.error_type = "error", f"{type(exc).__name__}: {exc}", type(exc).__name__
        base.infra = is_infra_error(exc)
        base.failures = [f"attempt crashed: {base.error}"]
    finally:
        if sandbox is not None:
            await sandbox_pool.release(sandbox)
    base.wall_time = time.monotonic() - started
    return base
