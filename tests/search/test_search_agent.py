"""The search tool inside a real agent run: a scripted OpenAI-compatible server on 127.0.0.1 drives the loop."""

from __future__ import annotations

import json

from agentkit import Agent
from agentkit.backends.remote import RemoteBackend
from agentkit.search import SearchIndex, search_tool
from agentkit.testing.scripted_server import Reply


async def test_agent_searches_and_reads_the_hits(serve, index: SearchIndex) -> None:
    srv = serve(
        [
            Reply(
                reasoning="look it up twice, in parallel",
                tool_calls=[("search", '{"query": "tiltmeters magma"}'), ("search", '{"query": "(("}')],
            ),
            Reply(content="Tiltmeters watch magma chambers swell."),
        ]
    )
    async with RemoteBackend("vllm", "m", base_url=srv.base_url, backoff_base=0.01) as backend:
        result = await Agent(backend, [search_tool(index)]).run("How are volcanoes monitored?")
    assert result.status == "completed" and result.tool_calls == 2
    first, second = (m for m in result.messages if m.role == "tool")
    assert not first.is_error and "[1] Volcanoes › Monitoring (geology/volcanoes.md:9)" in first.content
    assert not second.is_error and second.content.startswith("No results")
    # The model saw the tool spec and, on its second turn, the rendered hits.
    assert srv.requests[0]["tools"][0]["function"]["name"] == "search"
    sent = [m for m in srv.requests[1]["messages"] if m["role"] == "tool"]
    assert json.dumps(sent).count("tiltmeters") >= 1
