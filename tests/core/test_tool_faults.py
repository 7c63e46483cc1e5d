"""Tools that misbehave end their call, not the run: a sync tool past its timeout holds neither `run_sync`, Ctrl-C nor
the process exit; any return value becomes text or an error result the model can read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentkit import Agent, tool
from agentkit.backends.remote import RemoteBackend
from agentkit.testing.scripted_server import Reply
from agentkit.tools import EMPTY_RESULT, render_result

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from agentkit import Agent, tool
    from agentkit.backends.remote import RemoteBackend
    from agentkit.testing.scripted_server import Reply, ScriptedServer

    @tool(timeout=None)
    def stuck() -> str:
        '''Blocks for a long time.'''
        print("tool started", flush=True)
        time.sleep(60)
        return "late"

    with ScriptedServer([Reply(tool_calls=[("stuck", "{}")]), Reply(content="gave up on it")]) as srv:
        agent = Agent(RemoteBackend("vllm", "m", base_url=srv.base_url), [stuck], tool_timeout=float(sys.argv[1]))
        t0 = time.monotonic()
        result = agent.run_sync("go")
        print(f"returned {result.status} {result.output!r} after {time.monotonic() - t0:.2f} s", flush=True)
    """
)


def _start(tool_timeout: float) -> tuple[subprocess.Popen[str], float]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tool_timeout)], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    return child, time.monotonic()


def test_a_timed_out_sync_tool_holds_neither_run_sync_nor_the_process_exit() -> None:
    child, t0 = _start(0.5)
    out, err = child.communicate(timeout=50)
    took = time.monotonic() - t0
    assert child.returncode == 0, err
    assert "returned completed 'gave up on it'" in out
    assert took < 20, (
        took,
        out,
    )  # the tool sleeps 60 s: neither run_sync nor the interpreter's exit waited for it
    assert "still running in an abandoned thread" in err


def test_ctrl_c_stops_a_run_blocked_in_a_sync_tool() -> None:
    child, t0 = _start(300)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "tool started"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=50)
    assert child.returncode == 0, err
    assert "returned cancelled" in out and time.monotonic() - t0 < 20


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class BadError(Exception):
    def __str__(self) -> str:
        raise ValueError("cannot describe myself")


def test_any_return_value_becomes_text() -> None:
    circular: dict = {"a": 1}
    circular["self"] = circular
    loop_list: list = [1]
    loop_list.append(loop_list)
    assert (
        render_result({(1, 2): "pair", 3: "three", None: 0}) == '{"(1, 2)": "pair", "3": "three", "null": 0}'
    )
    assert render_result(circular) == '{"a": 1, "self": "<circular>"}'
    assert render_result(loop_list) == '[1, "<circular>"]'
    assert render_result({"when": {1.5, 2.5}}) in ('{"when": [1.5, 2.5]}', '{"when": [2.5, 1.5]}')
    with pytest.raises(RuntimeError):
        render_result(Unprintable())


@pytest.mark.parametrize(
    ("value", "is_error", "text"),
    [
        ({(1, 2): "pair"}, False, '{"(1, 2)": "pair"}'),
        ("CIRCULAR", False, '{"a": 1, "self": "<circular>"}'),
        (
            Unprintable(),
            True,
            "returned a Unprintable that cannot be shown as text (RuntimeError: no text for you",
        ),
        ({"nested": Unprintable()}, True, "returned a dict that cannot be shown as text"),
        ("", False, EMPTY_RESULT),
        ("RAISE", True, "failed: BadError: <unprintable BadError>"),
    ],
)
async def test_a_misbehaving_result_ends_the_call_not_the_run(
    serve, value: object, is_error: bool, text: str
) -> None:
    @tool
    def odd() -> object:
        """Returns something odd."""
        if value == "CIRCULAR":
            d: dict = {"a": 1}
            d["self"] = d
            return d
        if value == "RAISE":
            raise BadError()
        return value

    @tool
    async def odd_async() -> object:
        """The same, async."""
        return odd.fn()

    srv = serve([Reply(tool_calls=[("odd", "{}"), ("odd_async", "{}")]), Reply(content="read it")])
    async with RemoteBackend("vllm", "m", base_url=srv.base_url) as be:
        result = await Agent(be, [odd, odd_async]).run("x")
    assert result.status == "completed" and result.output == "read it"
    for m in result.messages[2:4]:
        assert m.is_error is is_error and text in m.content, m.content
