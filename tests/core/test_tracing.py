"""Tracing with the OpenTelemetry SDK's in-memory exporter: span names, GenAI attributes, parent links, no secrets;
and the plain JSONL run log. Off by default, and `import agentkit` imports no OpenTelemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from agentkit import Agent, tool, tracing
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply, auto_script

otel = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk: pip install -e '.[otel]'")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

KEY = "sk-live-0123456789abcdef"


@tool(secret_args=["token"])
def deploy(service: str, token: str) -> str:
    """Deploy a service."""
    return f"deployed {service}"


@tool
def login(user: str, password: SecretStr) -> str:
    """Log in."""
    return f"hello {user}"


@pytest.fixture
def exporter():
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    tracing.enable_tracing(provider)
    yield exp
    tracing.disable_tracing()


def script() -> list[Reply]:
    return [
        Reply(reasoning="deploy", tool_calls=[("deploy", json.dumps({"service": "web", "token": "tok-SECRET-1"})),
                                              ("login", json.dumps({"user": "ann", "password": "pw-SECRET-2"}))],
              usage={"prompt_tokens": 11, "completion_tokens": 7}),
        Reply(reasoning="done", content="ok", usage={"prompt_tokens": 20, "completion_tokens": 3}),
    ]  # fmt: skip


async def test_spans_follow_the_genai_conventions_with_parents_and_no_secrets(serve, exporter) -> None:
    srv = serve(script(), enforce="deepseek-v4", api_key=KEY)
    agent = Agent(RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key=KEY), [deploy, login], name="ops")
    result = await agent.run("deploy web")
    assert result.status == "completed", result.error
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) >= {"invoke_agent ops", "chat deepseek-v4-flash", "execute_tool deploy", "execute_tool login"}
    run = spans["invoke_agent ops"]
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent" and run.parent is None
    assert run.attributes["gen_ai.usage.input_tokens"] == 31 and run.attributes["gen_ai.usage.output_tokens"] == 10
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chats) == 2 and all(c.parent.span_id == run.context.span_id for c in chats)
    assert chats[0].attributes["gen_ai.request.model"] == "deepseek-v4-flash"
    assert chats[0].attributes["gen_ai.usage.input_tokens"] == 11 and chats[0].attributes["gen_ai.usage.output_tokens"] == 7
    tool_span = spans["execute_tool deploy"]
    assert tool_span.parent.span_id == run.context.span_id
    assert tool_span.attributes["gen_ai.tool.name"] == "deploy" and tool_span.attributes["gen_ai.tool.call.id"]
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"]) == {"service": "web", "token": "***"}
    everything = json.dumps([dict(s.attributes) for s in exporter.get_finished_spans()])
    assert "SECRET" not in everything and KEY not in everything


async def test_eval_attempt_span_parents_the_run(serve, exporter) -> None:
    from agentkit.envs.attempt import default_agent_factory, needs_python, run_attempt
    from agentkit.envs.generator import generate_records
    from agentkit.testing.oracle import oracle_script

    record = next(r for r in generate_records(6, seed=5, difficulties=(1,)) if not needs_python(r))
    srv = serve(oracle_script([record]))
    factory = default_agent_factory(RemoteBackend("vllm", "oracle", base_url=srv.base_url, api_key="x"))
    out = await run_attempt(record, 0, factory)
    assert out.passed, out
    spans = exporter.get_finished_spans()
    attempt = next(s for s in spans if s.name.startswith("eval_attempt "))
    run = next(s for s in spans if s.name.startswith("invoke_agent "))
    assert run.parent.span_id == attempt.context.span_id
    assert attempt.attributes["agentkit.eval.passed"] is True and attempt.attributes["agentkit.eval.task_id"]


async def test_run_log_writes_jsonl_without_secrets(serve, tmp_path) -> None:
    path = tmp_path / "runs.jsonl"
    tracing.enable_run_log(path)
    try:
        srv = serve(script(), enforce="deepseek-v4", api_key=KEY)
        agent = Agent(RemoteBackend("deepseek", "deepseek-v4-flash", base_url=srv.base_url, api_key=KEY), [deploy, login])
        await agent.run("deploy web")
    finally:
        tracing.disable_run_log()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in lines] == ["run_start", "model_request", "tool_call", "tool_call", "model_request", "run_end"]
    assert lines[-1]["status"] == "completed" and lines[-1]["usage"]["prompt_tokens"] == 31
    assert "SECRET" not in path.read_text() and KEY not in path.read_text()


def test_off_by_default_and_import_is_light(serve, tmp_path) -> None:
    code = "import sys, agentkit; print(sorted(m for m in ('opentelemetry', 'mcp') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
    assert tracing.observer("a", "m") is None
    srv = serve(auto_script, enforce="deepseek-v4")
    log = tmp_path / "env.jsonl"
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": KEY, "AGENTKIT_RUN_LOG": str(log),
           "AGENTKIT_TRACING": "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, "examples/tracing.py"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "invoke_agent" in proc.stdout and "execute_tool word_count" in proc.stdout
    assert log.exists() and KEY not in log.read_text()
