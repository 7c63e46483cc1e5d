"""The streaming DSML parser, fed token by token and character by character, on good and malformed output."""

from __future__ import annotations

import json
import random

import pytest
from conftest import add

from agentkit.backend import ChatDelta, ResponseAssembler
from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.parser import INVALID_CALL_NAME, DSMLStreamParser, parse_completion
from agentkit.backends.local.tokenizer import ChatTokenizer, synthetic_conversations
from agentkit.messages import AssistantMessage
from agentkit.tools import Toolset

GOOD = (
    "Need the sum of 東京 and 😀.</think>Let me add.\n\n<｜DSML｜function_calls>\n"
    '<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">17</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="b" string="false">25</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
    '<｜DSML｜invoke name="note">\n<｜DSML｜parameter name="text" string="true">line 1\nline "2" ✓</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="tags" string="false">["x", {"y": null}]</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
    "</｜DSML｜function_calls>"
)


def run(
    pieces: list[str], thinking: bool = True
) -> tuple[AssistantMessage, list[ChatDelta], DSMLStreamParser]:
    parser = DSMLStreamParser(thinking=thinking)
    deltas: list[ChatDelta] = []
    for piece in pieces:
        deltas += parser.feed(piece)
    deltas += parser.finish()
    assembler = ResponseAssembler()
    for d in deltas:
        assembler.add(d)
    return assembler.message(), deltas, parser


def check_good(msg: AssistantMessage) -> None:
    assert msg.reasoning_content == "Need the sum of 東京 and 😀."
    assert msg.content == "Let me add."
    assert [c.name for c in msg.tool_calls] == ["add", "note"]
    assert json.loads(msg.tool_calls[0].arguments) == {"a": 17, "b": 25}
    assert json.loads(msg.tool_calls[1].arguments) == {
        "text": 'line 1\nline "2" ✓',
        "tags": ["x", {"y": None}],
    }


def test_fed_token_by_token_through_the_real_tokenizer(tokenizer: ChatTokenizer) -> None:
    ids = tokenizer.encode(GOOD, allow_special=True)
    decoder = tokenizer.stream_decoder()
    msg, deltas, parser = run([decoder.feed(i) for i in ids] + [decoder.flush()])
    check_good(msg)
    assert not parser.errors
    assert sum(1 for d in deltas if d.reasoning) > 3  # reasoning streamed as it came, not at the end


def test_every_split_point_gives_the_same_result() -> None:
    for cut in range(1, len(GOOD)):
        msg, _, parser = run([GOOD[:cut], GOOD[cut:]])
        check_good(msg)
        assert not parser.errors, (cut, parser.errors)


def test_character_by_character() -> None:
    msg, deltas, _ = run(list(GOOD))
    check_good(msg)
    # a call's name is announced before its arguments are complete
    first_call = next(i for i, d in enumerate(deltas) if d.tool_calls and d.tool_calls[0].name == "add")
    first_args = next(i for i, d in enumerate(deltas) if d.tool_calls and d.tool_calls[0].arguments)
    assert first_call < first_args


def test_content_keeps_newlines_that_are_not_the_separator() -> None:
    msg, _, _ = run(["</think>a\n\nb\n", "\n", "\n"])
    assert msg.content == "a\n\nb\n\n\n"
    # a marker cut off by the end of generation is not a call: the text stays content, verbatim
    msg, _, _ = run(["chat mode\n\n<｜DSML｜func"], thinking=False)
    assert msg.content == "chat mode\n\n<｜DSML｜func" and not msg.tool_calls
    msg, _, _ = run(["chat mode\n\n<｜DSML｜function_calls>\nadd"], thinking=False)
    assert msg.content == "chat mode" and msg.tool_calls[0].name == INVALID_CALL_NAME


@pytest.mark.parametrize("seed", range(3))
def test_rendered_synthetic_turns_parse_back(tokenizer: ChatTokenizer, seed: int) -> None:
    rng = random.Random(seed)
    for conv in synthetic_conversations(40, seed=seed):
        for m in conv.messages:
            if not isinstance(m, AssistantMessage):
                continue
            text = cf.render_assistant(m, with_reasoning=conv.thinking).text.removesuffix(cf.EOS)
            ids = tokenizer.encode(text, allow_special=True)
            decoder = tokenizer.stream_decoder()
            pieces, i = [], 0
            while i < len(ids):  # random groups of tokens, as a batched engine might deliver them
                n = rng.randint(1, 4)
                pieces.append("".join(decoder.feed(t) for t in ids[i : i + n]))
                i += n
            got, _, parser = run(pieces + [decoder.flush()], thinking=conv.thinking)
            assert not parser.errors
            assert (got.content or None) == (m.content or None)
            if conv.thinking:
                assert (got.reasoning_content or "") == (m.reasoning_content or "")
            assert [(c.name, json.loads(c.arguments)) for c in got.tool_calls] == [
                (c.name, json.loads(c.arguments)) for c in m.tool_calls
            ]


BLOCK = "</think>ok\n\n<｜DSML｜function_calls>\n"
VALID = '<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">1</｜DSML｜parameter>\n<｜DSML｜parameter name="b" string="false">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
END = "</｜DSML｜function_calls>"

MALFORMED = {
    "string=false value that is not JSON": (
        '<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">one</｜DSML｜parameter>\n</｜DSML｜invoke>\n' + VALID + END,
        "not JSON"),
    "duplicate parameter": (
        '<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">1</｜DSML｜parameter>\n'
        '<｜DSML｜parameter name="a" string="false">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n' + VALID + END,
        "twice"),
    "parameter never closed": (
        '<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">1\n</｜DSML｜invoke>\n' + VALID + END,
        "not closed"),
    "unreadable invoke tag": ('<｜DSML｜invoke nme=add>\n</｜DSML｜invoke>\n' + VALID + END, "unreadable invoke"),
    "unreadable parameter tag": (
        '<｜DSML｜invoke name="add">\n<｜DSML｜parameter a=1>1</｜DSML｜parameter>\n</｜DSML｜invoke>\n' + VALID + END,
        "unreadable parameter"),
    "text that is not an invoke": ("call add(1, 2) please\n" + END, "expected"),
    "garbage inside an invoke": (
        '<｜DSML｜invoke name="add">\nwhat now\n<｜DSML｜parameter name="a" string="false">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n' + VALID + END,
        "neither"),
    "stopped inside a value": ('<｜DSML｜invoke name="add">\n<｜DSML｜parameter name="a" string="false">1', "stopped"),
    "stopped inside an invoke tag": ('<｜DSML｜invoke name="ad', "unreadable invoke"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_output_becomes_an_error_result_with_the_raw_text(case: str) -> None:
    body, reason = MALFORMED[case]
    text = BLOCK + body
    for pieces in ([text], list(text)):
        msg, _, parser = run(pieces)
        assert msg.content == "ok"
        assert any(reason in e for e in parser.errors), parser.errors
        broken = msg.tool_calls[0]
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.arguments)  # never half-valid JSON that a tool could run with
        raw = broken.arguments
        assert raw.strip() and raw in text  # the model's own text, verbatim
        # a valid parallel call after the broken one still runs
        if VALID in body:
            assert json.loads(msg.tool_calls[-1].arguments) == {"a": 1, "b": 2}
        # the loop's tool validation turns it into an error result that shows the model its text
        out = await Toolset([add]).call(broken.name, broken.arguments)
        assert out.is_error and (raw[:40] in out.content or "Unknown tool" in out.content)
        # and the transcript replays it as written
        replay = cf.render_assistant(msg, with_reasoning=False).text
        if raw.startswith(cf.INVOKE_OPEN):
            assert raw.rstrip("\n") in replay


def test_lenient_forms_are_accepted() -> None:
    json_body = BLOCK + '<｜DSML｜invoke name="add">\n{"a": 1, "b": 2}\n</｜DSML｜invoke>\n' + END
    msg, errors = parse_completion(json_body, thinking=True)
    assert json.loads(msg.tool_calls[0].arguments) == {"a": 1, "b": 2} and not errors
    no_attr = (
        BLOCK
        + '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="n">3</｜DSML｜parameter>\n<｜DSML｜parameter name="s">hi</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        + END
    )
    msg, errors = parse_completion(no_attr, thinking=True)
    assert json.loads(msg.tool_calls[0].arguments) == {"n": 3, "s": "hi"} and not errors
    no_end = BLOCK + VALID
    msg, errors = parse_completion(no_end, thinking=True)
    assert json.loads(msg.tool_calls[0].arguments) == {"a": 1, "b": 2} and errors == [
        "generation stopped before </｜DSML｜function_calls>"
    ]


def test_calls_without_closing_the_reasoning_and_text_after_the_block() -> None:
    msg, errors = parse_completion(
        "hmm\n\n<｜DSML｜function_calls>\n" + VALID + END + "\ntrailing words", thinking=True
    )
    assert msg.reasoning_content == "hmm" and msg.tool_calls[0].name == "add"
    assert msg.content == "\ntrailing words"
    assert len(errors) == 2


def test_nothing_at_all_and_only_reasoning() -> None:
    assert parse_completion("", thinking=True)[0] == AssistantMessage()
    msg, _ = parse_completion("cut off while thinking <｜DSML", thinking=True)
    assert msg.reasoning_content == "cut off while thinking <｜DSML" and msg.content is None


def test_fuzz_never_raises() -> None:
    rng = random.Random(0)
    alphabet = ["<｜DSML｜", "</｜DSML｜", "invoke", "parameter", "function_calls", ">", '"', "name=", "string=",
                "true", "false", "\n", "</think>", "{", "}", "1", "x", "😀", " "]  # fmt: skip
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for thinking in (True, False):
            msg, _ = parse_completion(text, thinking=thinking)
            for c in msg.tool_calls:
                assert c.name
