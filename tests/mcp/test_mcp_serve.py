"""`agentkit mcp serve` driven by the official SDK's client, over stdio (a spawned `agentkit mcp serve`) and streamable
HTTP (the same command on a free port). An environment's tools must behave exactly as in `Episode`: the same calls go
through an in-process episode and through MCP, and the results, the final state and the verdict must be equal."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from agentkit.envs.generator import generate_records
from agentkit.envs.runtime import PYTHON_IMPL, Episode
from agentkit.envs.spec import TaskRecord
from agentkit.search import default_search_tool
from agentkit.tools import Toolset
from tests.mcp.conftest import free_port, wait_for_port

SERVE = [sys.executable, "-m", "agentkit", "mcp", "serve"]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TaskRecord]]:
    records = generate_records(10, seed=42, difficulties=[3])
    path = tmp_path_factory.mktemp("tasks") / "tasks.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in records))
    return path, records


@contextlib.asynccontextmanager
async def stdio_session(*args: str) -> AsyncIterator[ClientSession]:
    with open(os.devnull, "w") as devnull:  # noqa: ASYNC230 - opening /dev/null does not block
        params = StdioServerParameters(command=SERVE[0], args=[*SERVE[1:], *args])
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.contextmanager
def http_server(*args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*SERVE, "--http", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(15)


def plain_calls(record: TaskRecord) -> list[tuple[str, dict]]:
    """The reference solution plus the mistakes a model makes: a wrong argument, an unknown tool."""
    calls = [(c.tool, c.arguments) for c in record.solution.calls]
    first = record.environment.tools[0].name
    return [(first, {"no_such_argument": 1}), ("no_such_tool", {}), *calls]


async def via_episode(record: TaskRecord, calls: list[tuple[str, dict]], answer: str | None) -> dict:
    episode = Episode(record)
    toolset = Toolset(episode.tools())
    results = []
    for name, args in calls:
        out = await toolset.call(name, args)  # as the agent loop calls a tool
        results.append((out.content, out.is_error))
    verdict = episode.score(answer)
    return {"results": results, "state": episode.state, "verdict": {"passed": verdict.passed, "failures": verdict.failures}}


async def via_mcp(session: ClientSession, calls: list[tuple[str, dict]], answer: str | None) -> dict:
    results = []
    for name, args in calls:
        res = await session.call_tool(name, args)
        results.append((res.content[0].text, res.is_error))
    state = json.loads((await session.read_resource("episode://state")).contents[0].text)
    query = "" if answer is None else "?answer=" + urllib.parse.quote(answer)
    verdict = json.loads((await session.read_resource(f"episode://verdict{query}")).contents[0].text)
    return {"results": results, "state": state, "verdict": verdict}


def no_python(records: list[TaskRecord]) -> list[TaskRecord]:
    return [r for r in records if not any(t.impl == PYTHON_IMPL for t in r.environment.tools)]


async def test_stdio_environment_tools_behave_exactly_as_in_episode(tasks) -> None:
    path, records = tasks
    for record in no_python(records)[:4]:
        calls, answer = plain_calls(record), record.solution.answer
        expected = await via_episode(record, calls, answer)
        async with stdio_session("--tasks", str(path), "--task", record.task.task_id) as session:
            listed = {t.name: t for t in (await session.list_tools()).tools}
            assert set(listed) == {t.name for t in record.environment.tools}
            got = await via_mcp(session, calls, answer)
            task = (await session.read_resource("episode://task")).contents[0].text
        assert task == record.task.instruction
        assert got == expected, record.task.task_id
        assert got["verdict"]["passed"], got["verdict"]
        assert got["results"][0][1] and got["results"][1][1]  # the two mistakes are error results
        assert "Unknown tool 'no_such_tool'" in got["results"][1][0]


async def test_http_sessions_get_separate_episodes(tasks) -> None:
    path, records = tasks
    record = next(r for r in no_python(records) if r.environment.state and r.meta.get("writes"))
    calls, answer = plain_calls(record), record.solution.answer
    expected = await via_episode(record, calls, answer)
    untouched = await via_episode(record, [], answer)
    with http_server("--tasks", str(path), "--task", record.task.task_id) as url:
        async with http_session(url) as first, http_session(url) as second:
            got = await via_mcp(first, calls, answer)
            other = await via_mcp(second, [], answer)
        async with http_session(url) as third:  # a new session starts from the task's initial state
            fresh = await via_mcp(third, [], answer)
    assert got == expected and got["verdict"]["passed"]
    assert other == untouched and fresh == untouched and not other["verdict"]["passed"]
    assert got["state"] != other["state"]


async def test_search_over_the_stdlib_docs_matches_the_in_process_tool() -> None:
    expected = await default_search_tool().invoke({"query": "json dumps indent", "k": 2})
    async with stdio_session("--search", "stdlib") as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["search"]
        res = await session.call_tool("search", {"query": "json dumps indent", "k": 2})
        bad = await session.call_tool("search", {"k": 2})
    assert (res.content[0].text, res.is_error) == (expected.content, False)
    assert bad.is_error and "query" in bad.content[0].text


@pytest.mark.parametrize("args, message", [
    ([], "nothing to serve"),
    (["--tasks", "missing.jsonl", "--task", "0"], "does not exist"),
    (["--task", "0"], "go together"),
])  # fmt: skip
def test_bad_usage_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run([*SERVE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_unknown_task_is_a_clear_error(tasks) -> None:
    path, records = tasks
    proc = subprocess.run([*SERVE, "--tasks", str(path), "--task", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no task 'nope'" in proc.stderr, proc.stderr


@pytest.mark.docker
async def test_sandbox_python_shell_and_files_one_sandbox_per_session() -> None:
    async with stdio_session("--sandbox") as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert names == {"python", "shell", "write_file", "read_file"}
        wrote = await session.call_tool("write_file", {"path": "notes/a.txt", "content": "hello"})
        assert not wrote.is_error, wrote.content[0].text
        shell = await session.call_tool("shell", {"command": "cat notes/a.txt && echo !"})
        assert shell.content[0].text.strip() == "hello!"
        await session.call_tool("python", {"code": "x = 6 * 7"})
        py = await session.call_tool("python", {"code": "print(x)"})  # state persists within the session
        assert py.content[0].text.strip() == "42" and not py.is_error
        read = await session.call_tool("read_file", {"path": "notes/a.txt"})
        assert read.content[0].text == "hello"
        fail = await session.call_tool("python", {"code": "1/0"})
        assert fail.is_error and "ZeroDivisionError" in fail.content[0].text
        missing = await session.call_tool("read_file", {"path": "nope.txt"})
        assert missing.is_error
    with http_server("--sandbox") as url:
        async with http_session(url) as first, http_session(url) as second:
            await first.call_tool("python", {"code": "y = 1"})
            other = await second.call_tool("python", {"code": "print(y)"})
            assert other.is_error and "NameError" in other.content[0].text  # a sandbox of its own


def test_mcp_serve_example_runs(tmp_path: Path) -> None:
    """examples/mcp_serve.py: the SDK's client plays a task over `agentkit mcp serve` (stdio) and it passes."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "examples" / "mcp_serve.py")], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "verdict: {'passed': True" in proc.stdout and "search: [1]" in proc.stdout
