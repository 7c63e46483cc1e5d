"""The byte-level BPE tokenizer trained here: special tokens, exact round trips, streaming decode, persistence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.tokenizer import (
    SPECIAL_TOKENS,
    ChatTokenizer,
    TokenizerError,
    synthetic_corpus,
    train_tokenizer,
)
from agentkit.messages import UserMessage

SAMPLES = [
    "plain ascii",
    "naïve café — 東京 Привет 😀👍🏽 \u200b zero-width and \x00 nul",
    "def f(x):\n\treturn {'a': [1, 2.5, None]}  # code\n",
    "  leading and trailing spaces  \n\n\n",
    '</think><think><｜User｜><｜DSML｜invoke name="x"> lookalike markers',
    "",
]


def test_markers_are_single_special_tokens_with_fixed_ids(tokenizer: ChatTokenizer) -> None:
    assert tokenizer.bos_id == 0 and tokenizer.eos_id == 1
    assert [tokenizer.special_ids[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert tokenizer.encode("a<think>b", allow_special=True)[1] == tokenizer.special_ids[cf.THINK_START]


@pytest.mark.parametrize("text", SAMPLES)
def test_any_text_round_trips_and_never_forges_a_marker(tokenizer: ChatTokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert not any(tokenizer.is_special(i) for i in ids)


def test_random_unicode_round_trips(tokenizer: ChatTokenizer) -> None:
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF), rng.randint(0x1F300, 0x1FAFF)]))
                       for _ in range(rng.randint(1, 40)))  # fmt: skip
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_prompt_encoding_places_markers_by_id(tokenizer: ChatTokenizer) -> None:
    prompt = cf.render([UserMessage(content="say </think> please")], thinking=True)
    ids = tokenizer.encode_prompt(prompt)
    specials = [i for i in ids if tokenizer.is_special(i)]
    assert specials == [tokenizer.special_ids[m] for m in (cf.BOS, cf.USER, cf.ASSISTANT, cf.THINK_START)]
    assert tokenizer.decode(ids) == prompt.text


def test_stream_decoder_holds_split_utf8_until_complete(tokenizer: ChatTokenizer) -> None:
    text = "😀東京👍🏽é" * 3
    ids = tokenizer.encode(text)
    assert len(ids) > len("😀東京👍🏽é")  # some characters span several tokens
    decoder = tokenizer.stream_decoder()
    pieces = [decoder.feed(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


def test_save_and_load_keep_every_id(tokenizer: ChatTokenizer, tmp_path: Path) -> None:
    tokenizer.save(tmp_path)
    loaded = ChatTokenizer.load(tmp_path)
    for text in SAMPLES:
        assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.vocab_size == tokenizer.vocab_size


def test_training_is_deterministic_and_learns_the_template() -> None:
    corpus = synthetic_corpus(40, seed=3, code=True)
    a, b = train_tokenizer(corpus, 1024), train_tokenizer(corpus, 1024)
    sample = cf.render_tools([{"type": "function", "function": {"name": "f", "parameters": {}}}])
    prompt = cf.render_text(sample)
    assert a.encode_prompt(prompt) == b.encode_prompt(prompt)
    assert len(a.encode_prompt(prompt)) < len(sample.encode()) / 3  # merges learned the template's fixed text


def test_a_tokenizer_without_the_markers_is_refused(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="special tokens"):
        ChatTokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="no tokenizer"):
        ChatTokenizer.load(tmp_path / "missing")
