"""Tracing an agent: OpenTelemetry spans (GenAI semantic conventions) and a plain JSONL run log.

Run against DeepSeek:  DEEPSEEK_API_KEY=sk-... python examples/tracing.py
With a collector instead of the console, configure OpenTelemetry's exporter as usual and set AGENTKIT_TRACING=1.
AGENTKIT_RUN_LOG=runs.jsonl appends one JSON line per run event, without a collector.
"""

import os

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentkit import Agent, tool, tracing
from agentkit.backends import RemoteBackend


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


exporter = InMemorySpanExporter()  # ConsoleSpanExporter() or an OTLP exporter in a real application
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracing.enable_tracing(provider)  # one call; off by default

backend = RemoteBackend(os.environ.get("AGENTKIT_PROVIDER", "deepseek"), os.environ.get("AGENTKIT_MODEL"))
result = Agent(backend, [word_count], name="counter").run_sync("How many words are in 'a b c'?")
for span in exporter.get_finished_spans():
    print(f"{span.name:32} {dict(span.attributes)}")
print(result.status)
