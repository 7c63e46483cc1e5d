"""The DeepSeek-V3.2 prompt format: agentkit messages in, the exact token sequence the model was trained on out.

The structure follows DeepSeek's `encoding_dsv32` (see ../shared/reference/deepseek_v32.md §2):

    <BOS>{system}\\n\\n{tools block}<User>{question}<Assistant><think>{reasoning}</think>{answer}<EOS>

- The system text follows BOS with no role token; the tools block is appended to it.
- A user turn ends with `<Assistant>` then `<think>` (thinking mode, last user message) or `</think>` (otherwise):
  the think marker opens or skips the model's reasoning.
- An assistant turn is [reasoning `</think>`] + content + ["\\n\\n" + DSML tool-call block] + `<EOS>`. Reasoning
  is rendered only for messages after the last user message: reasoning of earlier user turns is dropped, the rule
  DeepSeek's API applies (and agentkit's `WirePolicy` DEEPSEEK_V32 mirrors on the wire).
- Tool results follow the assistant's EOS directly, with no role token, in `<function_results>`, and end with the
  think marker again: the model continues the same assistant turn, thinking about the results (thinking mode).

The wording of the tools block's instructions is ours; its layout (the DSML skeleton, the `<functions>` list of one
JSON schema per line) is DeepSeek's. A prompt is returned as parts, each either a marker (a special token, placed by
id) or text (encoded as text), so text can never forge a marker; `Prompt.text` is the string form for tests and logs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage

# Markers, each a single special token. The bars are fullwidth "｜" and "▁" is U+2581.
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_START = "<think>"
THINK_END = "</think>"
DSML = "｜DSML｜"
CALLS_START = f"<{DSML}function_calls>"
CALLS_END = f"</{DSML}function_calls>"
INVOKE_OPEN = f"<{DSML}invoke"  # followed by the text ` name="NAME">`
INVOKE_CLOSE = f"</{DSML}invoke>"
PARAM_OPEN = f"<{DSML}parameter"  # followed by the text ` name="KEY" string="true|false">`
PARAM_CLOSE = f"</{DSML}parameter>"
MARKERS: frozenset[str] = frozenset(
    {BOS, EOS, USER, ASSISTANT, THINK_START, THINK_END, CALLS_START, CALLS_END, INVOKE_OPEN, INVOKE_CLOSE,
     PARAM_OPEN, PARAM_CLOSE}
)  # fmt: skip

RESULTS_START = "<function_results>"
RESULTS_END = "</function_results>"
RESULT_START = "<result>"
RESULT_END = "</result>"

TOOLS_TEMPLATE = """## Tools

You can call the functions listed below. To call them, write a "{calls_start}" block like this one as part of your reply:
{calls_start}
{invoke_open} name="$FUNCTION_NAME">
{param_open} name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE{param_close}
...
{invoke_close}
{invoke_open} name="$FUNCTION_NAME2">
...
{invoke_close}
{calls_end}

Write string and scalar values as they are, with no quotes or escaping; write lists and objects as JSON. Set the "string" attribute to "true" for parameters of string type and to "false" for every other type (numbers, booleans, arrays, objects). Several invokes in one block run in parallel.

In thinking mode, think again after the function results arrive, like this:

{calls_start}
...
{calls_end}

{results_start}
...
{results_end}

{think_start}...thinking about the results{think_end}

Here are the functions available in JSONSchema format:
<functions>
{functions}
</functions>
"""


@dataclass
class Prompt:
    """A rendered prompt: (text, is_marker) parts, adjacent text merged."""

    parts: list[tuple[str, bool]] = field(default_factory=list)

    def add(self, text: str, marker: bool = False) -> None:
        if not text:
            return
        if marker:
            if text not in MARKERS:
                raise ValueError(f"{text!r} is not a marker of the prompt format")
            self.parts.append((text, True))
        elif self.parts and not self.parts[-1][1]:
            self.parts[-1] = (self.parts[-1][0] + text, False)
        else:
            self.parts.append((text, False))

    def extend(self, other: Prompt) -> None:
        for text, marker in other.parts:
            self.add(text, marker)

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)


def tool_function(spec: dict[str, Any]) -> dict[str, Any]:
    """The `function` object of an OpenAI tool spec (`{"type": "function", "function": {...}}`), or the spec itself."""
    return spec["function"] if isinstance(spec.get("function"), dict) else spec


def render_tools(tools: Sequence[dict[str, Any]]) -> str:
    """The tools block appended to the system text: instructions, the DSML skeleton, one JSON schema per line."""
    functions = "\n".join(json.dumps(tool_function(t), ensure_ascii=False) for t in tools)
    return TOOLS_TEMPLATE.format(
        calls_start=CALLS_START, calls_end=CALLS_END, invoke_open=INVOKE_OPEN, invoke_close=INVOKE_CLOSE,
        param_open=PARAM_OPEN, param_close=PARAM_CLOSE, results_start=RESULTS_START, results_end=RESULTS_END,
        think_start=THINK_START, think_end=THINK_END, functions=functions,
    )  # fmt: skip


def render_text(text: str) -> Prompt:
    """A string that may contain marker strings (the tools template) as prompt parts, markers recognised."""
    out = Prompt()
    pos = 0
    while pos < len(text):
        hits = [(i, m) for m in MARKERS if (i := text.find(m, pos)) != -1]
        if not hits:
            out.add(text[pos:])
            break
        i, m = min(hits, key=lambda h: (h[0], -len(h[1])))
        out.add(text[pos:i])
        out.add(m, marker=True)
        pos = i + len(m)
    return out


def render_tool_calls(calls: Sequence[ToolCall]) -> Prompt:
    """The DSML block for `calls`. String arguments are written raw (string="true"), other JSON values as JSON.

    A call the parser could not read keeps the model's raw text as its arguments (starting with the invoke tag); it
    is written back verbatim, so the model sees exactly what it produced. Other arguments that are not a JSON object
    are written as text inside their invoke.
    """
    out = Prompt()
    out.add("\n\n")
    out.add(CALLS_START, marker=True)
    for call in calls:
        out.add("\n")
        if call.arguments.startswith(
            INVOKE_OPEN
        ):  # a broken invoke kept raw by the parser: replay it as written
            out.extend(render_text(call.arguments.rstrip("\n") + "\n"))
            out.add(INVOKE_CLOSE, marker=True)
            continue
        out.add(INVOKE_OPEN, marker=True)
        out.add(f' name="{call.name}">')
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError:
            args = None
        if isinstance(args, dict):
            for key, value in args.items():
                out.add("\n")
                out.add(PARAM_OPEN, marker=True)
                if isinstance(value, str):
                    out.add(f' name="{key}" string="true">{value}')
                else:
                    out.add(f' name="{key}" string="false">{json.dumps(value, ensure_ascii=False)}')
                out.add(PARAM_CLOSE, marker=True)
        else:
            out.add("\n" + call.arguments)
        out.add("\n")
        out.add(INVOKE_CLOSE, marker=True)
    out.add("\n")
    out.add(CALLS_END, marker=True)
    return out


def render_assistant(message: AssistantMessage, *, with_reasoning: bool) -> Prompt:
    """What the model generates for `message` (after the prompt's think marker), EOS included.

    `with_reasoning`: the think block was opened (thinking mode, current turn), so the reasoning and `</think>`
    come first.
    """
    out = Prompt()
    if with_reasoning:
        out.add(message.reasoning_content or "")
        out.add(THINK_END, marker=True)
    out.add(message.content or "")
    if message.tool_calls:
        out.extend(render_tool_calls(message.tool_calls))
    out.add(EOS, marker=True)
    return out


def render(
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] = (),
    *,
    thinking: bool,
    add_bos: bool = True,
) -> Prompt:
    """Render a conversation. When it ends with a user or tool message, the result ends with the think marker the
    model continues from (the generation prompt)."""
    msgs = list(messages)
    if tools and not any(isinstance(m, SystemMessage) for m in msgs):
        msgs.insert(0, SystemMessage(content=""))
    last_user = max((i for i, m in enumerate(msgs) if isinstance(m, UserMessage)), default=-1)
    out = Prompt()
    if add_bos:
        out.add(BOS, marker=True)
    tools_done = False
    i = 0
    while i < len(msgs):
        m = msgs[i]
        if isinstance(m, SystemMessage):
            out.add(m.content)
            if tools and not tools_done:
                tools_done = True
                out.add("\n\n" if m.content else "")
                out.extend(render_text(render_tools(tools)))
        elif isinstance(m, UserMessage):
            out.add(USER, marker=True)
            out.add(m.content)
            out.add(ASSISTANT, marker=True)
            out.add(THINK_START if thinking and i == last_user else THINK_END, marker=True)
        elif isinstance(m, AssistantMessage):
            out.extend(render_assistant(m, with_reasoning=thinking and i > last_user))
        else:
            j = i
            while j < len(msgs) and isinstance(msgs[j], ToolMessage):
                j += 1
            out.extend(_render_results(msgs, i, j))
            out.add("\n\n")
            out.add(THINK_START if thinking and i >= last_user else THINK_END, marker=True)
            i = j
            continue
        i += 1
    return out


def _render_results(msgs: list[Message], start: int, end: int) -> Prompt:
    """Tool results msgs[start:end], in the order of the calls of the assistant message before them."""
    results = [m for m in msgs[start:end] if isinstance(m, ToolMessage)]
    prev = msgs[start - 1] if start > 0 else None
    if isinstance(prev, AssistantMessage) and prev.tool_calls:
        order = {c.id: n for n, c in enumerate(prev.tool_calls)}
        results.sort(key=lambda r: order.get(r.tool_call_id, len(order)))
    out = Prompt()
    out.add("\n\n" + RESULTS_START)
    for r in results:
        out.add(f"\n{RESULT_START}{r.content}{RESULT_END}")
    out.add("\n" + RESULTS_END)
    return out
