"""Generation with the DSA transformer: prefill, then cached decoding, for many concurrent requests at once.

One engine owns the model, one `DSACache` with a row per concurrent sequence, and one worker thread that runs every
torch call, so the asyncio event loop never blocks on the model. Requests from any number of coroutines are
scheduled continuously: each iteration admits waiting requests into free cache rows (their prompts prefilled
together, right-padded), then advances every running sequence by one token in a single batched forward. A finished
or cancelled sequence frees its row at once for the next request, so a long generation never holds up a short one.

Sampling is per request: greedy (temperature 0), or temperature with nucleus (top-p) filtering drawn from a
`torch.Generator` seeded per request, so a seeded request reproduces its tokens whatever else runs beside it.
Attention is sparse (DSA top-k) by default; a request may ask for the dense path of the same weights.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agentkit.errors import ContextLengthError

from .beam import BeamSearch
from .errors import LocalModelError
from .model import ATTN_MODES, DSATransformer

log = logging.getLogger("agentkit.local")


class GenerationError(LocalModelError):
    """The model failed while generating (a bug or resource exhaustion), or the engine was closed."""


@dataclass(frozen=True)
class SamplingParams:
    """How one request is decoded. temperature <= 0 means greedy; `mode` None means the engine's default."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    mode: str | None = None
    stop_ids: frozenset[int] = frozenset()
    constraint: Any = None
    """Per-request state with `allowed() -> list[int] | None` and `advance(token)` (e.g. constrain.ToolCallConstraint):
    when `allowed()` lists ids, the next token is chosen among them only. Beam search also needs `fork()`."""
    beams: int = 1
    """1: greedy (or sampled) decoding, streamed token by token. More: beam search of that width (beam.py), which
    takes that many cache rows and delivers the best hypothesis's tokens at once when the search ends."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.mode is not None and self.mode not in ("dense", "sparse"):
            raise ValueError(f"mode must be 'dense' or 'sparse', got {self.mode!r}")
        if self.beams < 1:
            raise ValueError(f"beams must be at least 1, got {self.beams}")
        if self.beams > 1 and self.temperature > 0:
            raise ValueError("beam search picks the most likely hypotheses: use temperature 0 with beams > 1")


@dataclass
class _End:
    reason: str


@dataclass(eq=False)
class _Seq:
    prompt: list[int]
    params: SamplingParams
    mode: str
    stream: GenerationStream
    generator: torch.Generator | None
    row: int | None = None
    length: int = 0  # tokens in the cache row
    pending: int | None = None  # sampled, delivered, not yet fed back
    n_out: int = 0
    cancelled: bool = False
    search: BeamSearch | None = None
    extra_rows: list[int] = field(default_factory=list)  # a beam search's rows beyond `row`

    def slots(self) -> list[tuple[int, int]]:
        """(cache row, token to feed) of each row this sequence decodes in the next step."""
        if self.search is not None:
            return [(b.row, b.pending) for b in self.search.beams]
        return [] if self.row is None or self.pending is None else [(self.row, self.pending)]


class GenerationStream:
    """The tokens of one request as they are generated (async iterator of ids, stop token excluded).

    After iteration ends, `finish_reason` is "stop" (a stop token), "length" (max_new_tokens or the context is
    full) or "cancelled"; `completion_tokens` counts the generated tokens, the stop token included.
    """

    def __init__(self, engine: GenerationEngine, loop: asyncio.AbstractEventLoop, prompt_tokens: int) -> None:
        self._engine = engine
        self._loop = loop
        self._queue: asyncio.Queue[int | _End | BaseException] = asyncio.Queue()
        self._seq: _Seq | None = None
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason: str | None = None

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> int:
        if self.finish_reason is not None:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, int):
            return item
        if isinstance(item, _End):
            self.finish_reason = item.reason
            raise StopAsyncIteration
        self.finish_reason = "error"
        raise item

    def cancel(self) -> None:
        """Stop generating (idempotent); the cache row is freed at the engine's next step."""
        if self._seq is not None and self.finish_reason is None:
            self._seq.cancelled = True
            self._engine._wake()

    async def aclose(self) -> None:
        self.cancel()

    # called from the engine thread
    def _push(self, item: int | _End | BaseException) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
            return True
        except RuntimeError:  # the consumer's event loop is gone: nobody is listening
            return False


@dataclass
class EngineStats:
    prefill_tokens: int = 0
    decode_steps: int = 0
    decode_tokens: int = 0
    max_batch_seen: int = 0
    requests: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class GenerationEngine:
    """Continuous batched generation over one model. Create once, `submit` from coroutines, `close` at the end.

    `max_batch` sequences decode together (cache rows; a beam search of width w takes w of them); more requests wait
    in FIFO order. `context_len` caps prompt plus generated tokens per sequence (the cache is allocated once:
    n_layers * max_batch * context_len rows).
    `stop_ids` end a sequence; `vocab_size` limits sampling to the tokenizer's ids; `threads` is the number of
    intra-op threads of the worker (1 by default; raise it for long prompts on an otherwise idle machine).
    """

    def __init__(
        self,
        model: DSATransformer,
        *,
        max_batch: int = 8,
        context_len: int = 4096,
        mode: str = "sparse",
        stop_ids: Sequence[int] = (),
        vocab_size: int | None = None,
        threads: int = 1,
    ) -> None:
        if mode not in ("dense", "sparse"):
            raise ValueError(f"mode must be 'dense' or 'sparse' (one of {ATTN_MODES[:2]}), got {mode!r}")
        self.model = model.eval()
        self.mode = mode
        self.max_batch = max_batch
        self.context_len = min(context_len, model.cfg.max_seq_len)
        self.stop_ids = frozenset(stop_ids)
        # ids past the tokenizer's vocabulary (spare embedding rows) are never sampled
        self.vocab_size = min(vocab_size or model.cfg.vocab_size, model.cfg.vocab_size)
        self.threads = threads
        self.stats = EngineStats()
        self._cache = model.new_cache(max_batch, self.context_len)
        self._free_rows = list(range(max_batch - 1, -1, -1))
        self._waiting: collections.deque[_Seq] = collections.deque()
        self._active: list[_Seq] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- public API -------------------------------------------------------------------------------------------------

    def submit(self, prompt: Sequence[int], params: SamplingParams = SamplingParams()) -> GenerationStream:
        """Queue a request; call from a coroutine. Raises ContextLengthError when the prompt leaves no room."""
        if not prompt:
            raise ValueError("the prompt is empty")
        if params.beams > self.max_batch:
            raise ValueError(f"beams={params.beams} needs that many cache rows, but the engine has {self.max_batch}")
        if len(prompt) >= self.context_len:
            raise ContextLengthError(
                f"the prompt has {len(prompt)} tokens but the local model's context holds {self.context_len} "
                "(prompt plus at least one generated token); shorten the conversation or raise context_len",
                status=400,
                provider="local",
            )
        stream = GenerationStream(self, asyncio.get_running_loop(), len(prompt))
        generator = None
        if params.temperature > 0:
            generator = torch.Generator().manual_seed(
                params.seed if params.seed is not None else secrets.randbits(63)
            )
        seq = _Seq(list(prompt), params, params.mode or self.mode, stream, generator)
        stream._seq = seq
        with self._cond:
            if self._closed:
                raise GenerationError("the generation engine is closed")
            self._waiting.append(seq)
            self.stats.requests += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agentkit-dsa-engine", daemon=True)
                self._thread.start()
            self._cond.notify()
        return stream

    async def generate(
        self, prompt: Sequence[int], params: SamplingParams = SamplingParams()
    ) -> tuple[list[int], str]:
        """The whole generation: (token ids, finish_reason)."""
        stream = self.submit(prompt, params)
        try:
            tokens = [t async for t in stream]
        finally:
            stream.cancel()
        return tokens, stream.finish_reason or "cancelled"

    @property
    def running(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker; requests still running or waiting end with a GenerationError."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    # -- the worker thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        # Per-thread setting: the worker's ops use `threads` intra-op threads, the rest of the process is untouched.
        # One is the right default here: a decode step is many tiny matmuls where thread hand-offs cost more than
        # they save, and on a shared 2-core host spinning OpenMP threads slow everything down several times over.
        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._closed and not self._waiting and not self._active:
                        self._cond.wait()
                    if self._closed:
                        break
                    admitted = []
                    while self._waiting and len(self._free_rows) >= self._waiting[0].params.beams:
                        seq = self._waiting.popleft()
                        if seq.cancelled:
                            seq.stream._push(_End("cancelled"))
                            continue
                        seq.row = self._free_rows.pop()
                        seq.extra_rows = [self._free_rows.pop() for _ in range(seq.params.beams - 1)]
                        admitted.append(seq)
                self._drop_cancelled()
                if admitted:
                    self._guarded(admitted, self._prefill)
                ready = [s for s in self._active if s.slots()]
                if ready:
                    self._guarded(ready, self._decode)
        failure = GenerationError("the generation engine was closed while this request was running")
        for seq in [*self._active, *self._waiting]:
            seq.stream._push(failure)
        self._active.clear()
        self._waiting.clear()

    def _guarded(self, seqs: list[_Seq], step: object) -> None:
        """Run a model step; if it fails, fail exactly the sequences it was for and keep serving the others."""
        try:
            step(seqs)  # type: ignore[operator]
        except Exception as exc:  # a model failure must not kill the worker
            log.exception("local model step failed")
            error = GenerationError(f"the local model failed: {type(exc).__name__}: {exc}")
            for seq in seqs:
                if seq.row is not None:
                    seq.stream._push(error)
                    self._release(seq)

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self._active if s.cancelled]:
            self._finish(seq, "cancelled")

    def _by_mode(self, seqs: list[_Seq]) -> dict[str, list[_Seq]]:
        groups: dict[str, list[_Seq]] = {}
        for seq in seqs:
            groups.setdefault(seq.mode, []).append(seq)
        return groups

    def _prefill(self, seqs: list[_Seq]) -> None:
        for mode, group in self._by_mode(seqs).items():
            width = max(len(s.prompt) for s in group)
            tokens = torch.zeros(len(group), width, dtype=torch.long)
            for i, s in enumerate(group):
                tokens[i, : len(s.prompt)] = torch.tensor(s.prompt)
            rows = torch.tensor([s.row for s in group])
            n_new = torch.tensor([len(s.prompt) for s in group])
            self._cache.reset(rows)
            logits = self.model(
                tokens, self._cache, mode=mode, rows=rows, n_new=n_new, last_only=True
            )  # [B, V]
            self.stats.prefill_tokens += int(n_new.sum())
            for s in group:
                s.length = len(s.prompt)
                self._active.append(s)
            plain = [i for i, s in enumerate(group) if s.params.beams == 1]
            self._sample_and_deliver([group[i] for i in plain], logits[plain])
            for i, s in enumerate(group):
                if s.params.beams > 1 and s.row is not None:
                    room = min(s.params.max_new_tokens, self.context_len - s.length - 1)
                    s.search = BeamSearch(s.params.beams, [s.row, *s.extra_rows], max(room, 1),
                                          self.stop_ids | s.params.stop_ids, s.params.constraint)  # fmt: skip
                    self._beam_advance(s, s.search.start(logits[i : i + 1, : self.vocab_size]))

    def _decode(self, seqs: list[_Seq]) -> None:
        for mode, group in self._by_mode(seqs).items():
            spans: list[tuple[int, int]] = []
            slots: list[tuple[int, int]] = []
            for s in group:
                mine = s.slots()
                spans.append((len(slots), len(slots) + len(mine)))
                slots += mine
            tokens = torch.tensor([[token] for _, token in slots])  # [B, 1]
            rows = torch.tensor([row for row, _ in slots])
            logits = self.model(tokens, self._cache, mode=mode, rows=rows, last_only=True)  # [B, V]
            self.stats.decode_steps += 1
            self.stats.decode_tokens += len(slots)
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(slots))
            plain = [i for i, s in enumerate(group) if s.search is None]
            for i in plain:
                group[i].length += 1
                group[i].pending = None
            self._sample_and_deliver([group[i] for i in plain], logits[[spans[i][0] for i in plain]])
            for s, (a, b) in zip(group, spans, strict=True):
                if s.search is not None:
                    self._beam_advance(s, s.search.step(logits[a:b, : self.vocab_size]))

    def _beam_advance(self, seq: _Seq, copies: list[tuple[int, int]]) -> None:
        """After a beam-search step: fork the cache rows it asked for, or deliver its result when it is over."""
        search = seq.search
        assert search is not None
        for src, dst in copies:
            self._cache.copy_row(src, dst)
        if seq.cancelled:
            self._finish(seq, "cancelled")
        elif search.result is not None:
            tokens, reason = search.result
            seq.n_out = seq.stream.completion_tokens = len(tokens)
            delivered = tokens[:-1] if reason == "stop" else tokens
            if all(seq.stream._push(t) for t in delivered):
                self._finish(seq, reason)
            else:
                self._finish(seq, "cancelled")

    def _sample_and_deliver(self, group: list[_Seq], logits: torch.Tensor) -> None:
        if not group:
            return
        logits = logits[:, : self.vocab_size]
        greedy = logits.argmax(dim=-1).tolist()
        for i, seq in enumerate(group):
            constraint = seq.params.constraint
            allowed = None if constraint is None else constraint.allowed()
            if allowed:
                row = torch.full_like(logits[i], float("-inf"))
                index = torch.tensor(allowed)
                row[index] = logits[i, index]
                token = int(row.argmax()) if seq.generator is None else _sample(row, seq.params, seq.generator)
            else:
                token = greedy[i] if seq.generator is None else _sample(logits[i], seq.params, seq.generator)
            if constraint is not None:
                constraint.advance(token)
            seq.n_out += 1
            seq.stream.completion_tokens = seq.n_out
            if token in self.stop_ids or token in seq.params.stop_ids:
                self._finish(seq, "stop")
                continue
            if seq.cancelled or not seq.stream._push(token):
                self._finish(seq, "cancelled")
                continue
            if seq.n_out >= seq.params.max_new_tokens or seq.length + 1 >= self.context_len:
                self._finish(seq, "length")
                continue
            seq.pending = token

    def _finish(self, seq: _Seq, reason: str) -> None:
        seq.stream._push(_End(reason))
        self._release(seq)

    def _release(self, seq: _Seq) -> None:
        if seq in self._active:
            self._active.remove(seq)
        if seq.row is not None:
            with self._cond:
                self._free_rows += [seq.row, *seq.extra_rows]
            seq.row, seq.extra_rows = None, []
        seq.pending = None
        seq.search = None


def _sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """One token from logits [V]: temperature, then nucleus filtering (smallest set with mass >= top_p)."""
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        outside = (
            sorted_probs.cumsum(-1) - sorted_probs >= params.top_p
        )  # mass before this token already enough
        sorted_probs[outside] = 0.0
        return int(order[torch.multinomial(sorted_probs, 1, generator=generator)])
    return int(torch.multinomial(probs, 1, generator=generator))
