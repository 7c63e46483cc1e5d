"""Beam search in the generation engine, checked against a plain beam search written here without a cache, on real
(tiny, random) models: the hypotheses it keeps, where it stops, its cache-row forks, and how it shares the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import ADD_QUESTION, ADD_TOOL, SYSTEM, eventually

from agentkit.backend import ChatRequest
from agentkit.backends.local.backend import LocalDSABackend
from agentkit.backends.local.beam import BeamSearch
from agentkit.backends.local.generate import GenerationEngine, SamplingParams
from agentkit.backends.local.model import DSATransformer
from agentkit.errors import BadRequestError
from agentkit.messages import SystemMessage, UserMessage

PROMPTS = [[5, 9, 33, 2, 7], list(range(20, 60)), list(range(300, 420, 3))]


@pytest.fixture
def engine(model: DSATransformer) -> Iterator[GenerationEngine]:
    e = GenerationEngine(model, max_batch=8, context_len=256)
    yield e
    e.close()


class EvenTokens:
    """A decoding constraint that allows only even token ids, and counts what it was fed (forked per hypothesis)."""

    def __init__(self) -> None:
        self.fed: list[int] = []

    def allowed(self) -> list[int]:
        return list(range(0, 512, 2))

    def advance(self, token: int) -> None:
        self.fed.append(token)

    def fork(self) -> EvenTokens:
        twin = EvenTokens()
        twin.fed = list(self.fed)
        return twin


def reference_beam(
    model: DSATransformer, prompt: list[int], width: int, n: int, stop: frozenset[int] = frozenset(),
    even_only: bool = False,
) -> tuple[list[int], str]:  # fmt: skip
    """Textbook beam search: every hypothesis re-run from scratch each step (no cache, no row forks); keep the
    `width` best proposals by total log-probability, a stop token or the n-th token finishes one, stop when the best
    finished one scores at least the best live one."""
    live: list[tuple[float, list[int]]] = [(0.0, [])]
    done: list[tuple[float, list[int], str]] = []
    with torch.inference_mode():
        while True:
            proposals = []
            for i, (score, toks) in enumerate(live):
                logp = torch.log_softmax(model(torch.tensor([prompt + toks]), mode="sparse")[0, -1].float(), -1)
                if even_only:
                    logp[1::2] = float("-inf")
                values, ids = logp.topk(width)
                proposals += [(score + v, i, t) for v, t in zip(values.tolist(), ids.tolist(), strict=True)]
            proposals.sort(key=lambda p: (-p[0], p[1], p[2]))
            nxt: list[tuple[float, list[int]]] = []
            for score, i, t in proposals:
                if len(nxt) == width:
                    break
                toks = live[i][1] + [t]
                if t in stop:
                    done.append((score, toks, "stop"))
                elif len(toks) >= n:
                    done.append((score, toks, "length"))
                else:
                    nxt.append((score, toks))
            if done:
                best = max(done, key=lambda d: d[0])
                if not nxt or best[0] >= nxt[0][0]:
                    return (best[1][:-1] if best[2] == "stop" else best[1]), best[2]
            live = nxt


@pytest.mark.parametrize("width", [2, 4])
async def test_beam_search_equals_a_plain_one_without_cache(engine: GenerationEngine, model: DSATransformer,
                                                            width: int) -> None:  # fmt: skip
    for prompt in PROMPTS:
        got = await engine.generate(prompt, SamplingParams(max_new_tokens=7, beams=width))
        assert got == reference_beam(model, prompt, width, 7)


async def test_a_stop_token_finishes_a_hypothesis_early(engine: GenerationEngine, model: DSATransformer) -> None:
    prompt = PROMPTS[1]
    free, _ = await engine.generate(prompt, SamplingParams(max_new_tokens=10, beams=3))
    stop = frozenset({free[3]})  # a token the search itself likes, so some hypothesis meets it
    got = await engine.generate(prompt, SamplingParams(max_new_tokens=10, beams=3, stop_ids=stop))
    assert got == reference_beam(model, prompt, 3, 10, stop)
    assert got[1] == "stop" and len(got[0]) < 10


async def test_width_one_is_greedy(engine: GenerationEngine) -> None:
    for prompt in PROMPTS:
        greedy = await engine.generate(prompt, SamplingParams(max_new_tokens=9))
        assert await engine.generate(prompt, SamplingParams(max_new_tokens=9, beams=1)) == greedy


async def test_each_hypothesis_keeps_its_own_constraint(engine: GenerationEngine, model: DSATransformer) -> None:
    constraint = EvenTokens()
    tokens, _ = await engine.generate(PROMPTS[0], SamplingParams(max_new_tokens=6, beams=4, constraint=constraint))
    assert tokens == reference_beam(model, PROMPTS[0], 4, 6, even_only=True)[0]
    assert all(t % 2 == 0 for t in tokens)
    assert constraint.fed == tokens[:1] or constraint.fed == []  # forks were fed, not the request's own object


async def test_beams_and_greedy_requests_decode_together_and_free_every_row(engine: GenerationEngine) -> None:
    jobs = [(p, SamplingParams(max_new_tokens=8, beams=b)) for p in PROMPTS for b in (1, 3)]
    alone = [await engine.generate(p, s) for p, s in jobs]
    together = await asyncio.gather(*[engine.generate(p, s) for p, s in jobs])
    assert list(together) == alone
    assert engine.stats.max_batch_seen == 8  # 3 greedy rows + beams of 3 rows, as many as fit in 8 at once
    assert await eventually(lambda: sorted(engine._free_rows) == list(range(8)))


async def test_a_cancelled_beam_search_frees_its_rows(engine: GenerationEngine) -> None:
    stream = engine.submit(PROMPTS[1], SamplingParams(max_new_tokens=200, beams=4))
    await asyncio.sleep(0.05)
    stream.cancel()
    assert [t async for t in stream] == [] and stream.finish_reason == "cancelled"
    assert await eventually(lambda: engine.running == 0 and sorted(engine._free_rows) == list(range(8)))


def test_bad_beam_settings_are_refused(model: DSATransformer) -> None:
    with pytest.raises(ValueError, match="beams must be at least 1"):
        SamplingParams(beams=0)
    with pytest.raises(ValueError, match="temperature 0"):
        SamplingParams(beams=2, temperature=0.7)
    with pytest.raises(ValueError, match="2 rows|cache rows"):
        BeamSearch(3, [0, 1], 10, frozenset())


async def test_the_backend_runs_beam_search_from_its_setting_or_the_request(memorised_checkpoint: Path) -> None:
    messages = [SystemMessage(content=SYSTEM), UserMessage(content=ADD_QUESTION)]

    async def turn(backend: LocalDSABackend, **extra: object) -> list[object]:
        """The turn's deltas: reasoning, content, tool-call names and arguments (call ids are random)."""
        request = ChatRequest(messages=messages, tools=[ADD_TOOL], thinking=True, extra=extra)
        return [(d.reasoning, d.content, [(c.name, c.arguments) for c in d.tool_calls or []])
                async for d in backend.stream(request)]  # fmt: skip

    async with LocalDSABackend(memorised_checkpoint, max_tokens=120) as greedy, \
            LocalDSABackend(memorised_checkpoint, max_tokens=120, beams=3) as beamed:  # fmt: skip
        assert beamed.engine.max_batch == 8 * 3
        expected = await turn(greedy)
        assert any(("add", "") in calls for _, _, calls in expected)  # the memorised tool call
        assert await turn(beamed) == expected == await turn(greedy, beams=3)
        with pytest.raises(BadRequestError, match="wider"):
            await turn(greedy, beams=99)
