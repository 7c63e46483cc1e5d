"""Tracing, off by default: OpenTelemetry spans following the GenAI semantic conventions, and a plain JSONL run log.

- `enable_tracing(provider=None)` (or `AGENTKIT_TRACING=1`) makes every run emit spans through OpenTelemetry (the
  `otel` extra): `invoke_agent {name}` for a run, `chat {model}` for each model request (model id, token counts,
  finish reason), `execute_tool {tool}` for each tool call (its arguments with secret ones masked), and what other
  parts open with `span()` inside them (an eval attempt).
- `enable_run_log(path)` (or `AGENTKIT_RUN_LOG=path`) appends one JSON line per run start, model request, tool call
  and run end, for users without a collector.

Off, the loop pays one attribute check per step: `observer()` returns None and nothing else runs. No attribute or log
line ever holds an API key (backends keep keys in their HTTP client's headers only; every text here also goes
through the credential redaction) or a tool argument marked secret (`@tool(secret_args=...)`, `SecretStr`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from agentkit.redaction import MASK, Redactor

_redact = Redactor(None).redact
_state: dict[str, Any] = {"tracer": None, "log": None, "env_checked": False}


def enable_tracing(tracer_provider: Any = None) -> None:
    """Emit OpenTelemetry spans for every run from now on (the global provider unless one is given)."""
    try:
        from opentelemetry import trace
    except ImportError as exc:  # pragma: no cover - without the extra
        raise ImportError("tracing needs OpenTelemetry: pip install 'agentkit[otel]'") from exc
    provider = tracer_provider or trace.get_tracer_provider()
    _state["tracer"] = provider.get_tracer("agentkit")


def disable_tracing() -> None:
    _state["tracer"] = None


def enable_run_log(path: str | os.PathLike[str]) -> None:
    """Append a JSON line per run event to `path`."""
    _state["log"] = RunLog(path)


def disable_run_log() -> None:
    _state["log"] = None


def _from_env() -> None:
    _state["env_checked"] = True
    if os.environ.get("AGENTKIT_TRACING", "").lower() in ("1", "true", "yes", "on") and _state["tracer"] is None:
        enable_tracing()
    if os.environ.get("AGENTKIT_RUN_LOG") and _state["log"] is None:
        enable_run_log(os.environ["AGENTKIT_RUN_LOG"])


def observer(agent_name: str, model: str) -> Observer | None:
    """An observer for one run, or None when tracing and the run log are both off (the fast path)."""
    if not _state["env_checked"]:
        _from_env()
    if _state["tracer"] is None and _state["log"] is None:
        return None
    return Observer(_state["tracer"], _state["log"], agent_name, model)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span of our own (an eval attempt, a sandbox execution) under the current one; nothing when tracing is off."""
    tracer = _state["tracer"]
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=_clean(attributes)) as s:
        yield s


class RunLog:
    """One JSON object per line, appended under a lock (runs of one process may share the file)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = _redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)


def masked_arguments(arguments: str, secret: frozenset[str]) -> str:
    """The raw JSON arguments of a call with every secret parameter's value masked, and credentials redacted."""
    if secret:
        try:
            data = json.loads(arguments)
        except json.JSONDecodeError:
            return MASK  # cannot tell the secret apart: show nothing
        if isinstance(data, dict):
            arguments = json.dumps({k: (MASK if k in secret else v) for k, v in data.items()}, ensure_ascii=False)
    return _redact(arguments)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: (_redact(v) if isinstance(v, str) else v) for k, v in attributes.items() if v is not None}


class Observer:
    """The spans and log lines of one run. Spans are started with explicit parents (the loop is an async generator,
    where a context attached across a `yield` would leak into the consumer); a tool's span is made current inside
    its own task, so what the tool opens (`span()`, an MCP call) nests under it."""

    def __init__(self, tracer: Any, log: RunLog | None, agent_name: str, model: str) -> None:
        self.tracer, self.log, self.agent_name, self.model = tracer, log, agent_name, model
        self.run_span: Any = None
        self.run_id = ""

    def _write(self, event: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.write({"ts": round(time.time(), 6), "event": event, "run_id": self.run_id, **fields})

    def run_start(self, run_id: str) -> None:
        self.run_id = run_id
        if self.tracer is not None:
            self.run_span = self.tracer.start_span(
                f"invoke_agent {self.agent_name}",
                attributes=_clean({
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": self.agent_name,
                    "gen_ai.request.model": self.model,
                    "gen_ai.conversation.id": run_id,
                }),
            )  # fmt: skip
        self._write("run_start", agent=self.agent_name, model=self.model)

    def _child(self, name: str, attributes: dict[str, Any]) -> Any:
        from opentelemetry import trace

        ctx = trace.set_span_in_context(self.run_span) if self.run_span is not None else None
        return self.tracer.start_span(name, context=ctx, attributes=_clean(attributes))

    def model_start(self, turn: int) -> Any:
        if self.tracer is None:
            return (None, time.monotonic())
        s = self._child(f"chat {self.model}", {"gen_ai.operation.name": "chat", "gen_ai.request.model": self.model,
                                               "agentkit.turn": turn})  # fmt: skip
        return (s, time.monotonic())

    def model_end(self, token: Any, turn: int, usage: Any, finish_reason: str | None, error: BaseException | None) -> None:
        s, started = token
        tokens = {}
        if usage is not None:
            tokens = {"gen_ai.usage.input_tokens": usage.prompt_tokens, "gen_ai.usage.output_tokens": usage.completion_tokens}
        if s is not None:
            s.set_attributes({**tokens, "gen_ai.response.model": self.model})
            if finish_reason:
                s.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
            if error is not None:
                _error(s, error)
            s.end()
        self._write("model_request", turn=turn, model=self.model, seconds=round(time.monotonic() - started, 6),
                    finish_reason=finish_reason, error=_redact(str(error)) if error else None, **tokens)  # fmt: skip

    @contextlib.contextmanager
    def tool_call(self, name: str, call_id: str, arguments: str, secret: frozenset[str]) -> Iterator[dict[str, Any]]:
        """Around one tool call, inside its task; the body sets `outcome["is_error"]`."""
        outcome: dict[str, Any] = {"is_error": False}
        shown = masked_arguments(arguments, secret)
        started = time.monotonic()
        if self.tracer is None:
            yield outcome
        else:
            from opentelemetry import trace

            s = self._child(f"execute_tool {name}", {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.type": "function", "gen_ai.tool.call.arguments": shown,
            })  # fmt: skip
            with trace.use_span(s, end_on_exit=True):
                yield outcome
                if outcome["is_error"]:
                    s.set_attribute("error.type", "tool_error")
        self._write("tool_call", tool=name, call_id=call_id, arguments=shown, is_error=outcome["is_error"],
                    seconds=round(time.monotonic() - started, 6))  # fmt: skip

    def run_end(self, result: Any) -> None:
        usage = result.usage
        if self.run_span is not None:
            self.run_span.set_attributes({
                "gen_ai.usage.input_tokens": usage.prompt_tokens, "gen_ai.usage.output_tokens": usage.completion_tokens,
                "agentkit.run.status": result.status, "agentkit.run.turns": result.turns,
                "agentkit.run.tool_calls": result.tool_calls,
            })  # fmt: skip
            if result.status == "error":
                self.run_span.set_attribute("error.type", result.error_type or "error")
            self.run_span.end()
        self._write("run_end", status=result.status, turns=result.turns, tool_calls=result.tool_calls,
                    tool_errors=result.tool_errors, usage=usage.to_dict(), cost=result.cost,
                    seconds=round(result.wall_time, 6), error=_redact(result.error) if result.error else None)  # fmt: skip


def _error(s: Any, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    s.set_attribute("error.type", type(error).__name__)
    s.set_status(Status(StatusCode.ERROR, _redact(str(error))[:500]))
