"""`agentkit run --tool ask_user`: the model can ask the person at the terminal a question and read the answer.

It lives in the application layer because only the CLI knows there is a person at a terminal; a program of your own
passes its own function as a tool instead (any typed function works). The question goes to stderr so that `--json`
output on stdout stays parseable, and the answer is read on a worker thread so the event loop (and Ctrl-C) stay live.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from agentkit.tools import Tool, tool

NO_ANSWER = "(no answer: nobody is there to answer; go on without it, or say what you need)"

# A person needs time to think and type; an unanswered question still ends its call, never the run.
ASK_TIMEOUT_S = 600.0


def ask_user_tool(stdin: TextIO | None = None, stderr: TextIO | None = None) -> Tool:
    """The `ask_user` tool over the given streams (default: the process's stdin and stderr)."""

    @tool(name="ask_user", timeout=ASK_TIMEOUT_S)
    async def ask_user(question: str) -> str:
        """Ask the person running this agent one question and wait for the answer. Use it only for what the task
        cannot be done without and only they know (a preference, a missing value, a confirmation).

        Args:
            question: one clear question, answerable in a line.
        """
        out = stderr or sys.stderr
        src = stdin or sys.stdin
        print(f"\n? {question}\n> ", end="", file=out, flush=True)
        line = await asyncio.to_thread(src.readline)
        if not line:
            return NO_ANSWER
        return line.strip() or "(the user gave an empty answer)"

    return ask_user
