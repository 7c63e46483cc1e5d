"""The generation engine on real (tiny, random) models: determinism, batching, sampling, stops, limits, threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import torch
from conftest import eventually, tiny_config

from agentkit.backends.local.generate import GenerationEngine, SamplingParams
from agentkit.backends.local.model import DSATransformer
from agentkit.errors import ContextLengthError

PROMPTS = [[5, 9, 33, 2, 7], list(range(20, 60)), [100] * 3, list(range(300, 420, 3))]


@pytest.fixture
def engine(model: DSATransformer) -> Iterator[GenerationEngine]:
    e = GenerationEngine(model, max_batch=4, context_len=256)
    yield e
    e.close()


def reference_greedy(model: DSATransformer, prompt: list[int], n: int, mode: str = "sparse") -> list[int]:
    """Plain greedy decoding, one sequence, written independently of the engine."""
    with torch.inference_mode():
        cache = model.new_cache(1, 256)
        logits = model(torch.tensor([prompt]), cache, mode=mode, last_only=True)
        out = []
        for _ in range(n):
            token = int(logits.argmax(-1))
            out.append(token)
            logits = model(torch.tensor([[token]]), cache, mode=mode, last_only=True)
    return out


async def test_greedy_matches_plain_decoding(engine: GenerationEngine, model: DSATransformer) -> None:
    tokens, reason = await engine.generate(PROMPTS[1], SamplingParams(max_new_tokens=12))
    assert tokens == reference_greedy(model, PROMPTS[1], 12) and reason == "length"


async def test_batched_decoding_equals_one_at_a_time(engine: GenerationEngine) -> None:
    params = SamplingParams(max_new_tokens=10)
    alone = [(await engine.generate(p, params))[0] for p in PROMPTS]
    together = await asyncio.gather(*[engine.generate(p, params) for p in PROMPTS])
    assert [t for t, _ in together] == alone
    assert engine.stats.max_batch_seen == len(PROMPTS)  # they really decoded in one batch


async def test_more_requests_than_rows_wait_and_all_finish(model: DSATransformer) -> None:
    engine = GenerationEngine(model, max_batch=2, context_len=256)
    try:
        results = await asyncio.gather(
            *[engine.generate([i + 1, i + 2], SamplingParams(max_new_tokens=6)) for i in range(7)]
        )
    finally:
        engine.close()
    assert all(len(t) == 6 and r == "length" for t, r in results)
    assert engine.stats.max_batch_seen == 2 and engine.stats.requests == 7


async def test_seeded_sampling_reproduces_whatever_runs_beside_it(engine: GenerationEngine) -> None:
    params = SamplingParams(max_new_tokens=15, temperature=1.0, top_p=0.9, seed=42)
    alone, _ = await engine.generate(PROMPTS[0], params)
    crowd = await asyncio.gather(
        engine.generate(PROMPTS[0], params),
        *[
            engine.generate(p, SamplingParams(max_new_tokens=15, temperature=1.0, seed=i))
            for i, p in enumerate(PROMPTS[1:])
        ],
    )
    assert crowd[0][0] == alone
    other, _ = await engine.generate(PROMPTS[0], SamplingParams(max_new_tokens=15, temperature=1.0, seed=43))
    assert other != alone


async def test_tiny_top_p_is_greedy(engine: GenerationEngine) -> None:
    greedy, _ = await engine.generate(PROMPTS[3], SamplingParams(max_new_tokens=8))
    nucleus, _ = await engine.generate(
        PROMPTS[3], SamplingParams(max_new_tokens=8, temperature=0.8, top_p=1e-6, seed=1)
    )
    assert nucleus == greedy


async def test_stop_tokens_end_the_sequence(engine: GenerationEngine) -> None:
    free, _ = await engine.generate(PROMPTS[1], SamplingParams(max_new_tokens=10))
    stop_at = free[4]
    first = free.index(stop_at)
    tokens, reason = await engine.generate(
        PROMPTS[1], SamplingParams(max_new_tokens=10, stop_ids=frozenset({stop_at}))
    )
    assert reason == "stop" and tokens == free[:first]


async def test_dense_and_sparse_agree_when_top_k_covers_the_context() -> None:
    torch.manual_seed(5)
    wide = DSATransformer(tiny_config(512, index_topk=256)).eval()
    engine = GenerationEngine(wide, max_batch=2, context_len=256)
    try:
        sparse = await engine.generate(PROMPTS[3], SamplingParams(max_new_tokens=10, mode="sparse"))
        dense = await engine.generate(PROMPTS[3], SamplingParams(max_new_tokens=10, mode="dense"))
    finally:
        engine.close()
    assert sparse == dense
    assert sparse[0] == reference_greedy(wide, PROMPTS[3], 10, mode="dense")


async def test_sparse_really_selects_when_the_context_exceeds_top_k(model: DSATransformer) -> None:
    long_prompt = list(range(1, 200))
    sparse = reference_greedy(model, long_prompt, 8, mode="sparse")
    dense = reference_greedy(model, long_prompt, 8, mode="dense")
    engine = GenerationEngine(model, max_batch=1, context_len=256, mode="sparse")
    try:
        got, _ = await engine.generate(long_prompt, SamplingParams(max_new_tokens=8))
        got_dense, _ = await engine.generate(long_prompt, SamplingParams(max_new_tokens=8, mode="dense"))
    finally:
        engine.close()
    assert got == sparse and got_dense == dense


async def test_context_limits(model: DSATransformer) -> None:
    engine = GenerationEngine(model, max_batch=1, context_len=64)
    try:
        with pytest.raises(ContextLengthError, match="64"):
            engine.submit(list(range(1, 65)))
        tokens, reason = await engine.generate(list(range(1, 60)), SamplingParams(max_new_tokens=100))
    finally:
        engine.close()
    assert reason == "length" and len(tokens) == 5  # 59 prompt + 5 generated = the 64 the cache holds


async def test_cancel_frees_the_row(engine: GenerationEngine) -> None:
    stream = engine.submit(PROMPTS[0], SamplingParams(max_new_tokens=10_000))
    async for _ in stream:
        break
    stream.cancel()
    assert await eventually(lambda: engine.running == 0)
    tokens, _ = await engine.generate(PROMPTS[0], SamplingParams(max_new_tokens=3))
    assert len(tokens) == 3


async def test_the_event_loop_keeps_running_while_the_model_works(model: DSATransformer) -> None:
    engine = GenerationEngine(model, max_batch=4, context_len=256)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        await asyncio.gather(*[engine.generate(p, SamplingParams(max_new_tokens=60)) for p in PROMPTS])
    finally:
        done.set()
        await tick
        engine.close()
    took = time.perf_counter() - started
    assert len(gaps) > 10 and max(gaps) < max(0.25, took / 4), (max(gaps), took)


def test_bad_sampling_parameters_are_refused() -> None:
    for kwargs in ({"max_new_tokens": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"mode": "fast"}):
        with pytest.raises(ValueError):
            SamplingParams(**kwargs)  # type: ignore[arg-type]
