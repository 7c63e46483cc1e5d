"""Speed of the local DSA backend: prefill and decode tokens/s, dense vs sparse, 1 and 8 concurrent sequences, and
time to first token through `agentkit serve` vs in-process.

The model is the config that ships (the shipped checkpoint's when present, else `DSAConfig()`), randomly initialised:
speed does not depend on what the weights learned. Everything runs through the real generation engine (worker
thread, batched decoding, sampling, asyncio hand-off); the server numbers cross a real HTTP socket on 127.0.0.1.
Baselines measured in the same run: dense attention for the attention modes, one sequence for batching, in-process
for the server. Target: >= 200 decode tokens/s for one sequence (sparse, the default).

    python benchmarks/bench_local.py            # prompts of 2048 tokens, 256 decoded
    python benchmarks/bench_local.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass

import httpx
import torch
from rich.console import Console
from rich.table import Table

from agentkit.backend import ChatRequest
from agentkit.backends.local.backend import SHIPPED_CHECKPOINT, WEIGHTS_FILE, LocalDSABackend
from agentkit.backends.local.checkpoint import read_config
from agentkit.backends.local.generate import GenerationEngine, SamplingParams
from agentkit.backends.local.model import DSAConfig, DSATransformer
from agentkit.backends.local.tokenizer import synthetic_corpus, train_tokenizer
from agentkit.backends.server import ChatServer
from agentkit.messages import SystemMessage, UserMessage

TARGET_DECODE = 200.0
TOOL = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}  # fmt: skip


@dataclass
class Sizes:
    prompt: int
    decode: int
    prompt8: int
    decode8: int
    ttft_reps: int


def shipped_config() -> DSAConfig:
    weights = SHIPPED_CHECKPOINT / WEIGHTS_FILE
    return read_config(weights) if weights.is_file() else DSAConfig()


async def one_sequence(engine: GenerationEngine, prompt: list[int], n: int, mode: str) -> tuple[float, float]:
    """(prefill tok/s from the time to first token, decode tok/s after it)."""
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    async for _ in engine.submit(prompt, SamplingParams(max_new_tokens=n, mode=mode)):
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return len(prompt) / (first - started), (count - 1) / (last - first)


async def batch(engine: GenerationEngine, prompts: list[list[int]], n: int, mode: str) -> float:
    """Aggregate decode tok/s once every sequence has its first token (prefill excluded)."""
    firsts: list[float] = []
    stamps: list[float] = []

    async def run(prompt: list[int]) -> None:
        k = 0
        async for _ in engine.submit(prompt, SamplingParams(max_new_tokens=n, mode=mode)):
            now = time.perf_counter()
            firsts.append(now) if k == 0 else stamps.append(now)
            k += 1

    await asyncio.gather(*(run(p) for p in prompts))
    start = max(firsts)
    decoded = sum(1 for t in stamps if t > start)
    return decoded / (max(stamps) - start)


async def ttft(backend: LocalDSABackend, reps: int) -> tuple[float, float, int]:
    """Median ms to a one-token answer: in-process (backend.stream) and through the server (SSE to [DONE]).

    The two are measured alternately, one of each per round, so that load from other processes on a shared
    host falls on both alike."""
    messages = [SystemMessage(content="You are a helpful assistant."), UserMessage(content="What is 2 + 2?")]
    request = ChatRequest(messages=messages, tools=[TOOL], max_tokens=1)
    prompt_tokens = len(backend.prompt_ids(request)[0])
    body = {"model": backend.model, "stream": True, "max_tokens": 1, "tools": [TOOL],
            "messages": [{"role": "system", "content": messages[0].content}, {"role": "user", "content": messages[1].content}]}  # fmt: skip
    local: list[float] = []
    served: list[float] = []
    server = ChatServer(backend, port=0)
    server.app._close_backend = False
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            for _ in range(reps + 1):  # the first round warms up the connection and is dropped
                t = time.perf_counter()
                async for _ in backend.stream(request):
                    pass
                local.append(time.perf_counter() - t)
                t = time.perf_counter()
                async with http.stream("POST", "/chat/completions", json=body) as r:
                    async for line in r.aiter_lines():
                        if line == "data: [DONE]":
                            break
                served.append(time.perf_counter() - t)
    finally:
        await asyncio.to_thread(server.stop)
    return 1000 * statistics.median(local[1:]), 1000 * statistics.median(served[1:]), prompt_tokens


async def main(quick: bool) -> dict[str, object]:
    sizes = Sizes(768, 64, 600, 32, 5) if quick else Sizes(2048, 256, 1024, 128, 15)
    torch.manual_seed(0)
    cfg = shipped_config()
    model = DSATransformer(cfg).eval()
    capacity = max(sizes.prompt + sizes.decode, sizes.prompt8 + sizes.decode8) + 8
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(300, cfg.vocab_size, (sizes.prompt,), generator=gen).tolist()
    prompts8 = [
        torch.randint(300, cfg.vocab_size, (sizes.prompt8,), generator=gen).tolist() for _ in range(8)
    ]
    results: dict[str, dict[str, float]] = {}
    engine = GenerationEngine(model, max_batch=8, context_len=capacity)
    try:
        await one_sequence(engine, prompt[:64], 8, "sparse")  # warm-up
        for mode in ("dense", "sparse"):
            prefill, decode = await one_sequence(engine, prompt, sizes.decode, mode)
            results[mode] = {
                "prefill": prefill,
                "decode": decode,
                "batch8": await batch(engine, prompts8, sizes.decode8, mode),
            }
    finally:
        engine.close()
    tokenizer = train_tokenizer(synthetic_corpus(200), cfg.vocab_size)
    backend = LocalDSABackend(transformer=model, tokenizer=tokenizer, context_len=capacity)
    try:
        ttft_local, ttft_server, ttft_prompt = await ttft(backend, sizes.ttft_reps)
    finally:
        await backend.aclose()

    d, s = results["dense"], results["sparse"]
    table = Table(title=f"local DSA backend: dim {cfg.dim}, {cfg.n_layers} layers, vocab {cfg.vocab_size}, "
                        f"top-k {cfg.index_topk}; prompt {sizes.prompt} tokens (batch: 8 x {sizes.prompt8})")  # fmt: skip
    for col in ("metric", "dense (baseline)", "sparse (default)", "sparse / dense"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    table.add_row(
        "prefill tok/s", f"{d['prefill']:.0f}", f"{s['prefill']:.0f}", f"{s['prefill'] / d['prefill']:.2f}x"
    )
    table.add_row(
        "decode tok/s, 1 sequence",
        f"{d['decode']:.0f}",
        f"{s['decode']:.0f}",
        f"{s['decode'] / d['decode']:.2f}x",
    )
    table.add_row(
        "decode tok/s, 8 sequences",
        f"{d['batch8']:.0f}",
        f"{s['batch8']:.0f}",
        f"{s['batch8'] / d['batch8']:.2f}x",
    )
    table.add_row(
        "batching gain (8 seq / 1 seq)",
        f"{d['batch8'] / d['decode']:.2f}x",
        f"{s['batch8'] / s['decode']:.2f}x",
        "",
    )
    table2 = Table(title=f"time to first token ({ttft_prompt}-token chat prompt, median)")
    for col in ("path", "ms", "vs in-process"):
        table2.add_column(col, justify="left" if col == "path" else "right")
    table2.add_row("in-process (LocalDSABackend.stream)", f"{ttft_local:.1f}", "1.00x")
    table2.add_row(
        "through agentkit serve (HTTP + SSE)", f"{ttft_server:.1f}", f"{ttft_server / ttft_local:.2f}x"
    )
    console = Console()
    console.print(table)
    console.print(table2)
    load = os.getloadavg()[0]
    verdict = "meets" if s["decode"] >= TARGET_DECODE else "misses"
    console.print(f"1-sequence sparse decode {s['decode']:.0f} tok/s {verdict} the {TARGET_DECODE:.0f} tok/s target "
                  f"(load average {load:.1f} on {os.cpu_count()} cores, 1 torch thread)")  # fmt: skip
    return {
        "decode_tok_s": round(s["decode"], 1),
        "prefill_tok_s": round(s["prefill"], 1),
        "decode_tok_s_batch8": round(s["batch8"], 1),
        "ttft_ms_server": round(ttft_server, 2),
        "ttft_ms_inprocess": round(ttft_local, 2),
        "decode_tok_s_dense": round(d["decode"], 1),
        "prefill_tok_s_dense": round(d["prefill"], 1),
        "decode_tok_s_batch8_dense": round(d["batch8"], 1),
        "prompt_tokens": sizes.prompt,
        "target_decode_tok_s": TARGET_DECODE,
        "meets_target": s["decode"] >= TARGET_DECODE,
        "load_avg_1m": round(load, 2),
        "quick": quick,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = parser.parse_args()
    summary = asyncio.run(main(args.quick))
    print(json.dumps(summary))
