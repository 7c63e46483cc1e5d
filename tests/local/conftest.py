"""Fixtures of the local-backend tests: a tokenizer trained here, a random tiny model, and a tiny model that has
memorised two conversations (so a real model, decoded greedily, drives the agent loop through a tool call)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# Every test here needs torch (the model, or fixtures built on it): without it the whole folder skips, with the reason.
if importlib.util.find_spec("torch") is None:
    pytest.skip(
        "the local-backend tests need torch, which is not installed: pip install -e '.[local]' (`make test` installs it)",
        allow_module_level=True,
    )

import torch
import torch.nn.functional as F

from agentkit import tool
from agentkit.backends.local import chat_format as cf
from agentkit.backends.local.backend import init_random_checkpoint, save_local_checkpoint
from agentkit.backends.local.model import DSAConfig, DSATransformer
from agentkit.backends.local.tokenizer import ChatTokenizer, synthetic_corpus, train_tokenizer
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD_TOOL = add.spec()
SYSTEM = "You are a careful assistant."
ADD_QUESTION = "What is 17 + 25?"
HELLO_QUESTION = "Say hello."
HELLO_ANSWER = "Hello! I am a tiny local model. Ünïcødé ✓"
ADD_REASONING = "I should call the add tool."
ADD_FINAL_REASONING = "The tool returned 42."
ADD_ANSWER = "17 + 25 = 42."


def add_conversation() -> list[Message]:
    call = ToolCall(id="call_0", name="add", arguments=json.dumps({"a": 17, "b": 25}))
    return [
        SystemMessage(content=SYSTEM),
        UserMessage(content=ADD_QUESTION),
        AssistantMessage(reasoning_content=ADD_REASONING, tool_calls=[call]),
        ToolMessage(tool_call_id="call_0", name="add", content="42"),
        AssistantMessage(reasoning_content=ADD_FINAL_REASONING, content=ADD_ANSWER),
    ]


def hello_conversation() -> list[Message]:
    return [
        SystemMessage(content=SYSTEM),
        UserMessage(content=HELLO_QUESTION),
        AssistantMessage(content=HELLO_ANSWER),
    ]


def tiny_config(vocab_size: int, **overrides: object) -> DSAConfig:
    base = dict(
        vocab_size=vocab_size, dim=64, n_layers=2, inter_dim=128, n_heads=2, q_lora_rank=32, kv_lora_rank=32,
        qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16, index_n_heads=2, index_head_dim=16,
        index_topk=32, max_seq_len=2048,
    )  # fmt: skip
    base.update(overrides)
    return DSAConfig(**base)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> bool:
    """Poll state owned by another thread (the engine worker, the server) until it holds or the time is up."""
    deadline = time.monotonic() + within
    for _ in range(100_000):
        if predicate() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    return predicate()


@pytest.fixture(scope="module")
def model() -> DSATransformer:
    """A tiny random model with top-k 8, so prompts of a few dozen tokens already attend sparsely."""
    torch.manual_seed(3)
    return DSATransformer(tiny_config(512, index_topk=8)).eval()


@pytest.fixture(scope="session")
def tokenizer() -> ChatTokenizer:
    return train_tokenizer(synthetic_corpus(150, seed=1, code=False), vocab_size=2048)


@pytest.fixture(scope="session")
def random_checkpoint(tokenizer: ChatTokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_random_checkpoint(
        tmp_path_factory.mktemp("random"), tiny_config(2048), tokenizer=tokenizer, seed=7
    )


@pytest.fixture(scope="session")
def memorised_checkpoint(tokenizer: ChatTokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained until it reproduces two conversations token for token (thinking + tool call, and a
    plain non-thinking answer). Sparse attention with top-k smaller than the sequences, trained and decoded alike."""
    torch.manual_seed(0)
    seqs = [
        tokenizer.encode_prompt(cf.render(add_conversation(), [ADD_TOOL], thinking=True)),
        tokenizer.encode_prompt(cf.render(hello_conversation(), [ADD_TOOL], thinking=False)),
    ]
    width = max(map(len, seqs))
    tokens = torch.full((len(seqs), width), tokenizer.eos_id)
    weight = torch.zeros(len(seqs), width)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.tensor(s)
        weight[i, : len(s) - 1] = 1.0
    model = DSATransformer(tiny_config(tokenizer.vocab_size, index_topk=64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.02 + 0.49 * (1 + math.cos(math.pi * min(s, 200) / 200))
    )
    shared = next(i for i, (a, b) in enumerate(zip(*seqs, strict=False)) if a != b)
    weight[:, shared - 1] = 0.0  # same context, different next token: the one position nothing can memorise
    targets, mask = tokens[:, 1:], weight[:, :-1].bool()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two that the other test suites share
    try:
        for _ in range(300):
            logits = model.forward_train(tokens, mode="sparse").logits[:, :-1]
            loss = F.cross_entropy(logits[mask], targets[mask])
            if loss.item() < 0.05 and bool((logits[mask].argmax(-1) == targets[mask]).all()):
                break  # checked before the step, so these are the weights that are saved
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.inference_mode():
        logits = model.forward_train(tokens, mode="sparse").logits[:, :-1]
    assert bool((logits[mask].argmax(-1) == targets[mask]).all()), (
        "the tiny model did not memorise its conversations"
    )
    return save_local_checkpoint(tmp_path_factory.mktemp("memorised"), model, tokenizer)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a `torch` test (`-m "not torch"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.torch)
