"""The one redaction: credential shapes at any key length, the literal key from MIN_SECRET_LENGTH characters, keys
split across stream chunks, and ordinary text left alone."""

from __future__ import annotations

import random
import string

import pytest

from agentkit.redaction import MIN_SECRET_LENGTH, Redactor

KEY = "sk-0123456789abcdef0123456789abcdef"


def test_the_literal_key_and_its_header_forms() -> None:
    r = Redactor(KEY)
    assert r.redact(f"Incorrect API key provided: {KEY}.") == "Incorrect API key provided: ***."
    assert r.redact(f"glued{KEY}glued") == "glued***glued"
    assert KEY not in repr(r) and KEY not in str(r)


@pytest.mark.parametrize("key", ["k", "ab", "x1y", "EMPTY", "short7!"])
def test_a_short_key_never_mangles_text_but_its_header_forms_are_masked(key: str) -> None:
    assert len(key) < MIN_SECRET_LENGTH
    r = Redactor(key)
    text = "The reasoning_content in the thinking mode must be passed back to the API."
    assert r.redact(text) == text  # with key "k" this once read "thin***ing"
    assert (
        r.redact(f"headers: Authorization: Bearer {key}, Accept: */*")
        == "headers: Authorization: Bearer ***, Accept: */*"
    )
    assert r.redact(f'{{"authorization": "Bearer {key}"}}') == '{"authorization": "Bearer ***"}'
    assert r.redact(f"api_key={key}&x=1") == "api_key=***&x=1"
    assert r.redact(f"x-api-key: {key}") == "x-api-key: ***"
    assert r.redact(f"sent Bearer {key}") == "sent Bearer ***"


def test_credential_shapes_are_masked_without_knowing_the_key() -> None:
    r = Redactor(None)
    assert r.redact("Authorization: Bearer sk-other-provider-key") == "Authorization: Bearer ***"
    assert (
        r.redact("no credentials here: the api key is invalid")
        == "no credentials here: the api key is invalid"
    )


@pytest.mark.parametrize("seed", range(30))
def test_a_key_split_anywhere_across_stream_chunks_never_shows(seed: int) -> None:
    rng = random.Random(seed)
    key = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(8, 60)))
    text = f"start {key} middle {key[:5]} {key}{key} and {key[:-1]} end"
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 20)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    stream = Redactor(key).stream()
    shown = [stream.feed(p) for p in pieces] + [stream.flush()]
    assert "".join(shown) == text.replace(key, "***")
    assert all(key not in s for s in shown)
