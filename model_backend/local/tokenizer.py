"""Byte-level BPE tokenizer for the local model, with the DeepSeek-V3.2 prompt markers as single special tokens.

Why byte-level: any UTF-8 text (code, JSON, emoji, CJK) round-trips exactly, with no unknown token. Why the markers
are special tokens with fixed ids: the model sees `<think>` or a DSML tag as one symbol, and the chat template can
place them by id, so text that merely *looks* like a marker (a user pasting "</think>", a tool result containing a
DSML tag) is encoded as ordinary bytes and can never forge a turn boundary. That is why `encode` never matches
special tokens inside text unless asked to (`allow_special=True`, for training text rendered by the template).

The BPE merges are trained here (the `tokenizers` library) on text the project generates; see `train_tokenizer` and
`synthetic_corpus`. The tokenizer is saved next to the checkpoint as `tokenizer.json`.
"""

from __future__ import annotations

import codecs
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage

from . import chat_format as cf
from .errors import LocalModelError

TOKENIZER_FILE = "tokenizer.json"

# Order fixes the ids: BOS is 0 and EOS is 1, as in DeepSeek's vocabulary.
SPECIAL_TOKENS: tuple[str, ...] = (
    cf.BOS,
    cf.EOS,
    cf.USER,
    cf.ASSISTANT,
    cf.THINK_START,
    cf.THINK_END,
    cf.CALLS_START,
    cf.CALLS_END,
    cf.INVOKE_OPEN,
    cf.INVOKE_CLOSE,
    cf.PARAM_OPEN,
    cf.PARAM_CLOSE,
)


class TokenizerError(LocalModelError):
    """The tokenizer file is missing or does not carry the special tokens the chat format needs."""


def _byte_alphabet() -> dict[str, int]:
    """The byte-level alphabet: each of the 256 bytes is shown as one printable character (GPT-2's convention,
    which `tokenizers`' ByteLevel pre-tokenizer uses); returns character -> byte value."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return {chr(code): b for b, code in chars.items()}


class ChatTokenizer:
    """A trained byte-level BPE plus the fixed special tokens. Thread-safe for encoding and decoding."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
        if missing:
            raise TokenizerError(
                f"the tokenizer lacks the special tokens {missing}; train one with train_tokenizer()"
            )
        # Text is always encoded as text: special tokens are placed by id, never recognised inside strings.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer
        self.special_ids: dict[str, int] = {t: int(tokenizer.token_to_id(t) or 0) for t in SPECIAL_TOKENS}
        self.bos_id = self.special_ids[cf.BOS]
        self.eos_id = self.special_ids[cf.EOS]
        self._special_re = re.compile(
            "|".join(re.escape(t) for t in sorted(SPECIAL_TOKENS, key=len, reverse=True))
        )

    # -- persistence ------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> ChatTokenizer:
        """Load `tokenizer.json` from a file or a checkpoint directory."""
        p = Path(path)
        if p.is_dir():
            p = p / TOKENIZER_FILE
        if not p.is_file():
            raise TokenizerError(f"no tokenizer at {p}; a checkpoint directory must contain {TOKENIZER_FILE}")
        return cls(Tokenizer.from_file(str(p)))

    @classmethod
    def from_str(cls, text: str) -> ChatTokenizer:
        """The tokenizer `to_str` wrote (a run's dataset cache keeps it inline)."""
        return cls(Tokenizer.from_str(text))

    def to_str(self) -> str:
        return str(self._tok.to_str())

    def save(self, path: str | Path) -> Path:
        """Write `tokenizer.json` into a directory (or to the given file path); returns the file path."""
        p = Path(path)
        if p.suffix != ".json":
            p.mkdir(parents=True, exist_ok=True)
            p = p / TOKENIZER_FILE
        self._tok.save(str(p))
        return p

    # -- vocabulary -------------------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    @cached_property
    def _token_bytes(self) -> list[bytes]:
        """Every id's exact bytes: byte-level pieces mapped back through the alphabet, specials as UTF-8."""
        alphabet = _byte_alphabet()
        table: list[bytes] = [b""] * self.vocab_size
        specials = set(self.special_ids.values())
        for piece, i in self._tok.get_vocab(with_added_tokens=True).items():
            if i in specials or any(ch not in alphabet for ch in piece):
                table[i] = piece.encode("utf-8")
            else:
                table[i] = bytes(alphabet[ch] for ch in piece)
        return table

    def token_bytes(self, token_id: int) -> bytes:
        return self._token_bytes[token_id]

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids.values()

    # -- encoding ---------------------------------------------------------------------------------------------------

    def encode(self, text: str, *, allow_special: bool = False) -> list[int]:
        """Token ids of `text`. Marker strings inside it stay plain text unless `allow_special` is set."""
        if not allow_special:
            return list(self._tok.encode(text, add_special_tokens=False).ids) if text else []
        ids: list[int] = []
        pos = 0
        for m in self._special_re.finditer(text):
            ids += self.encode(text[pos : m.start()])
            ids.append(self.special_ids[m.group()])
            pos = m.end()
        ids += self.encode(text[pos:])
        return ids

    def encode_prompt(self, prompt: cf.Prompt) -> list[int]:
        """Ids of a rendered prompt: its marker parts by id, its text parts as text (so they cannot forge markers)."""
        ids: list[int] = []
        for text, special in prompt.parts:
            if special:
                ids.append(self.special_ids[text])
            else:
                ids += self.encode(text)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; exact for any ids that came from `encode` (invalid UTF-8 becomes U+FFFD)."""
        table = self._token_bytes
        return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self)


class StreamDecoder:
    """Turns ids into text one at a time. A byte-level token may end inside a UTF-8 character; those bytes wait for
    the next token instead of being shown as U+FFFD."""

    def __init__(self, tokenizer: ChatTokenizer) -> None:
        self._table = tokenizer._token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self._table[token_id])

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


# --------------------------------------------------------------------------------------------------------------------
# Training


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, *, min_frequency: int = 2) -> ChatTokenizer:
    """Train byte-level BPE merges on `texts` (template-rendered text; markers in it are split out, not learned).

    The vocabulary holds the special tokens first (fixed ids), the 256 byte symbols, then merges up to `vocab_size`.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256} (specials + 256 bytes)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_text_runs(texts), trainer=trainer)
    return ChatTokenizer(tok)


def _text_runs(texts: Iterable[str]) -> Iterator[str]:
    """The text between markers: merges must never span a marker, exactly as `encode_prompt` splits."""
    splitter = re.compile("|".join(re.escape(t) for t in sorted(SPECIAL_TOKENS, key=len, reverse=True)))
    for text in texts:
        for run in splitter.split(text):
            if run:
                yield run


def synthetic_corpus(n_conversations: int = 400, *, seed: int = 0, code: bool = True) -> list[str]:
    """Template-rendered synthetic agent conversations (both modes, tools, tool calls, results), plus some code.

    A stand-in until `envs/` trajectories exist: the merges it learns cover the template's fixed text, JSON,
    tool schemas and Python, which is what an agent's context is made of.
    """
    texts = [
        cf.render(conv.messages, conv.tools, thinking=conv.thinking).text
        for conv in synthetic_conversations(n_conversations, seed=seed)
    ]
    if code:
        texts += list(_stdlib_code())
    return texts


def _stdlib_code(
    modules: Sequence[str] = ("json", "textwrap", "argparse", "dataclasses", "string"),
) -> Iterator[str]:
    """Source of a few standard-library modules: real Python, available offline, fixed for a Python version."""
    import importlib  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    for name in modules:
        try:
            yield inspect.getsource(importlib.import_module(name))
        except (OSError, TypeError):
            continue


# --------------------------------------------------------------------------------------------------------------------
# Synthetic conversations (training text for the tokenizer, and test material for the template and the parser)

_WORDS = (
    "the a file report order total price list item user date city value result error name count table row "
    "search query data python code run check find compute update create delete read write status amount id "
    "customer invoice balance stock warehouse meeting calendar event path folder score answer number text "
    "weather today tomorrow because so then first next finally need should will can let me think about it"
).split()
_UNICODE = ["café", "naïve", "東京", "Привет", "😀", "über", "ñandú", "Ελλάδα", "→", "½"]


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    tools: list[dict[str, Any]]
    thinking: bool


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_UNICODE))
    return " ".join(words).capitalize() + rng.choice([".", "?", "!", ":"])


def _random_tool(rng: random.Random, k: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["string", "integer", "number", "boolean", "array", "object"])
        schema: dict[str, Any] = {"type": kind, "description": _sentence(rng, rng.randint(3, 8))}
        if kind == "array":
            schema["items"] = {"type": rng.choice(["string", "integer"])}
        props[f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}"] = schema
    name = f"{rng.choice(['get', 'find', 'list', 'update', 'compute', 'search'])}_{rng.choice(_WORDS)}_{k}"
    return {"type": "function", "function": {
        "name": name, "description": _sentence(rng, rng.randint(4, 12)),
        "parameters": {"type": "object", "properties": props, "required": list(props)[:1]},
    }}  # fmt: skip


def _value(rng: random.Random, schema: dict[str, Any]) -> Any:
    kind = schema["type"]
    if kind == "string":
        return (
            _sentence(rng, rng.randint(1, 5)) if rng.random() < 0.7 else f"line one\nline {rng.randint(2, 9)}"
        )
    if kind == "integer":
        return rng.randint(-5, 10_000)
    if kind == "number":
        return round(rng.uniform(-100, 100), rng.randint(0, 3))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_value(rng, schema["items"]) for _ in range(rng.randint(0, 3))]
    return {rng.choice(_WORDS): rng.randint(0, 99) for _ in range(rng.randint(1, 3))}


def synthetic_conversations(n: int, *, seed: int = 0) -> list[Conversation]:
    """`n` random agent conversations: system prompt, tools, user turns, reasoning, parallel tool calls, results."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tools = [_random_tool(rng, k) for k in range(rng.randint(0, 4))]
        msgs: list[Message] = (
            [SystemMessage(content=_sentence(rng, rng.randint(4, 15)))] if rng.random() < 0.8 else []
        )
        thinking = rng.random() < 0.6
        for _turn in range(rng.randint(1, 3)):
            msgs.append(UserMessage(content=_sentence(rng, rng.randint(3, 20))))
            for step in range(rng.randint(0, 2) if tools else 0):
                calls = []
                for c in range(rng.randint(1, 2)):
                    fn = rng.choice(tools)["function"]
                    args = {k: _value(rng, s) for k, s in fn["parameters"]["properties"].items()}
                    calls.append(ToolCall(id=f"call_{step}_{c}", name=fn["name"], arguments=json.dumps(args)))
                msgs.append(
                    AssistantMessage(reasoning_content=_sentence(rng, rng.randint(5, 30)), tool_calls=calls)
                )
                for call in calls:
                    result = json.dumps({rng.choice(_WORDS): _sentence(rng, 3), "count": rng.randint(0, 50)})
                    msgs.append(ToolMessage(tool_call_id=call.id, name=call.name, content=result))
            answer = _sentence(rng, rng.randint(3, 40))
            msgs.append(
                AssistantMessage(content=answer, reasoning_content=_sentence(rng, rng.randint(5, 30)))
            )
        out.append(Conversation(msgs, tools, thinking))
    return out
