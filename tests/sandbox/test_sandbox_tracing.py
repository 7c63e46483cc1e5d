"""Each sandbox execution is a span under the tool call that made it (issue 42), checked with the OpenTelemetry SDK's
in-memory exporter against a real container and the scripted DeepSeek-wire server."""

from __future__ import annotations

import json

import pytest

from agentkit import Agent, tracing
from agentkit.backends.remote import RemoteBackend
from agentkit.sandbox import SandboxPool, python_tool
from agentkit.testing.scripted_server import Reply, ScriptedServer

pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk: pip install -e '.[otel]'")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

SECRET_CODE = "token = 'do-not-trace-me'\nprint(6 * 7)"


async def test_a_sandbox_execution_is_a_span_under_its_tool_call() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable_tracing(provider)
    script = [Reply(reasoning="Compute it.", tool_calls=[("python", json.dumps({"code": SECRET_CODE}))]),
              Reply(reasoning="It printed 42.", content="42")]  # fmt: skip
    try:
        with ScriptedServer(script) as srv:
            async with SandboxPool(size=0) as pool:
                backend = RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key="sk-test-0123456789")
                result = await Agent(backend, [python_tool(pool)]).run("What is 6 * 7?")
                await backend.aclose()
    finally:
        tracing.disable_tracing()
    assert result.status == "completed", result.error
    spans = exporter.get_finished_spans()
    execs = [s for s in spans if s.name == "sandbox.exec python"]
    tools = [s for s in spans if s.name == "execute_tool python"]
    assert len(execs) == 1 and len(tools) == 1
    assert execs[0].parent is not None and execs[0].parent.span_id == tools[0].context.span_id
    attrs = dict(execs[0].attributes)
    assert attrs["agentkit.sandbox.op"] == "python" and attrs["agentkit.sandbox.exit_code"] == 0
    assert attrs["agentkit.sandbox.timed_out"] is False and attrs["agentkit.sandbox.code_chars"] == len(SECRET_CODE)
    assert "do-not-trace-me" not in repr(attrs)
