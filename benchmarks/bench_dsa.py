"""DeepSeek Sparse Attention vs dense attention on the CPU: same weights, same run.

The model has DeepSeek-V3's attention proportions scaled down: dim 512 and 28 heads of 64 + 16 query/key dims,
so heads x head dim is 3.4x the model width as in V3 (128 x 192 at 7168), on the default 4 layers, MLA latent
128 + 16, indexer 4 heads x 32, k = 512. The attention share of a decode step, and so what sparsity can save,
depends on that proportion; the same run also decodes the 16-head default shape (`DSAConfig()`) at 32K, so the
effect of the head count is on the table rather than assumed.

For each context length: prefill time per layer (dense vs sparse, on the model's first layer alone: every layer
costs the same, and a 4-layer dense prefill of 64K tokens would take a quarter of an hour), decode-step latency of
the whole model at batch 1 and batch 4 (every sequence at that context), the attention part of the batch-1 step
and the lightning indexer's share of the sparse step, and the peak memory of a prefill. Also the cache bytes per
token (MLA latent + indexer key vs a plain MHA K/V cache of the same heads) and a correctness check: with k >= T,
sparse and dense logits agree. Indexer keys are cached in bfloat16 where the CPU multiplies it natively (`--index-dtype`;
DeepSeek keeps them in FP8): they only rank tokens, and reading them is most of the sparse step's attention work at
long context. On a CPU without native bfloat16 (AVX2 only) it is emulated and slower than float32, so there the keys
stay in float32.

    python benchmarks/bench_dsa.py            # 4K, 16K, 32K, 64K (about 10 minutes)
    python benchmarks/bench_dsa.py --quick    # under a minute: prefill at 4K and 16K, decode at 4K-32K over a
                                              # cache of random latents instead of a prefilled one
The last line is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from agentkit.backends.local.cache import DSACache
from agentkit.backends.local.cpu import native_bf16
from agentkit.backends.local.model import DSAConfig, DSATransformer

PAGE = 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """Samples the resident set every millisecond; yields a dict that gets 'peak' (bytes above the start)."""
    result = {"peak": 0}
    start = rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result["peak"] = max(result["peak"], rss_bytes() - start)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak"] = max(result["peak"], rss_bytes() - start)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Stopwatch:
    """Adds up the wall time spent inside chosen methods of the model while it is switched on.

    'attention' is every layer's MLA forward (indexer included); 'indexer' is the indexer's queries, keys,
    scoring and top-k. Wrapping instance attributes leaves the model's code untouched.
    """

    def __init__(self, model: DSATransformer) -> None:
        self.seconds = {"attention": 0.0, "indexer": 0.0}
        self.active = False
        for block in model.blocks:
            attn = block.attn
            attn.forward = self._wrap("attention", attn.forward)  # type: ignore[method-assign]
            for owner, name in ((attn, "_select"), (attn.indexer, "queries"), (attn.indexer, "keys")):
                setattr(owner, name, self._wrap("indexer", getattr(owner, name)))

    def _wrap(self, bucket: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return fn(*args, **kwargs)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[bucket] += time.perf_counter() - t0

        return run

    def decode_split(self, model: DSATransformer, cache: DSACache, mode: str, steps: int) -> dict[str, float]:
        """Per decode step: total, attention (all layers) and indexer seconds, each the median over steps."""
        tokens = torch.full((cache.batch_size, 1), 7, dtype=torch.long)
        samples: dict[str, list[float]] = {"total": [], "attention": [], "indexer": []}
        for i in range(steps + 2):
            self.seconds = {"attention": 0.0, "indexer": 0.0}
            self.active = True
            total = timed(lambda: model(tokens, cache, mode=mode, last_only=True))
            self.active = False
            cache.lengths -= 1  # rewind, so every step sees the same context
            if i >= 2:  # two warm-up steps
                samples["total"].append(total)
                samples["attention"].append(self.seconds["attention"])
                samples["indexer"].append(self.seconds["indexer"])
        return {name: statistics.median(values) for name, values in samples.items()}


def widen(cache: DSACache, batch: int) -> DSACache:
    """A cache of `batch` rows, each a copy of row 0 of `cache` (the same context for every sequence)."""
    wide = DSACache(
        len(cache.latent), batch, cache.capacity, cache.latent[0].shape[-1], cache.index_keys[0].shape[-1],
        index_dtype=cache.index_keys[0].dtype,
    )
    for dst, src in zip(wide.latent + wide.index_keys, cache.latent + cache.index_keys, strict=True):
        dst.copy_(src[:1].expand_as(dst))
    wide.lengths.fill_(int(cache.lengths[0]))
    return wide


def max_abs_diff_k_ge_t(model: DSATransformer, length: int, steps: int) -> float:
    """Sparse vs dense logits with k >= T: a prefill of `length` tokens and `steps` decode steps."""
    if model.cfg.index_topk < length + steps:
        raise ValueError("the check needs index_topk >= length + steps")
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, model.cfg.vocab_size, (1, length + steps), generator=gen)
    worst = 0.0
    caches = {mode: model.new_cache(1, length + steps) for mode in ("dense", "sparse")}
    out = {mode: model(tokens[:, :length], caches[mode], mode=mode) for mode in caches}
    worst = max(worst, float((out["dense"] - out["sparse"]).abs().max()))
    for t in range(length, length + steps):
        out = {mode: model(tokens[:, t : t + 1], caches[mode], mode=mode) for mode in caches}
        worst = max(worst, float((out["dense"] - out["sparse"]).abs().max()))
    return worst


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(title: str, columns: tuple[str, ...], cells: list[tuple[str, ...]]) -> Table:
    out = Table(title=title)
    for col in columns:
        out.add_column(col, justify="right")
    for row in cells:
        out.add_row(*row)
    return out


def ratio(r: dict[str, float], key: str) -> float:
    return r[f"{key}_dense"] / r[f"{key}_sparse"]


def first_layers(model: DSATransformer, n_layers: int) -> DSATransformer:
    """A model made of the first `n_layers` layers of `model`, with the same weights (copied)."""
    cfg = dataclasses.replace(model.cfg, n_layers=n_layers)
    small = DSATransformer(cfg).eval()
    keep = {k: v for k, v in model.state_dict().items()
            if not k.startswith("layers.") or int(k.split(".")[1]) < n_layers}  # fmt: skip
    small.load_state_dict(keep)
    return small


def random_cache(model: DSATransformer, ctx: int, index_dtype: torch.dtype, seed: int = 0) -> DSACache:
    """A batch-1 cache holding `ctx` tokens of random latents and indexer keys: what a decode step reads, without
    the minutes a prefill of the whole model takes (used by --quick and the head-count comparison)."""
    cache = model.new_cache(1, ctx + 8, index_dtype=index_dtype)
    gen = torch.Generator().manual_seed(seed)
    for t in cache.latent + cache.index_keys:
        t.copy_(torch.randn(t.shape, generator=gen).to(t.dtype))
    cache.lengths.fill_(ctx)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="under a minute (see above)")
    parser.add_argument("--layers", type=int, default=4, help="transformer layers (default 4, DSAConfig's)")
    parser.add_argument("--heads", type=int, default=28, help="attention heads (default 28: V3's proportions)")
    parser.add_argument("--topk", type=int, default=512, help="tokens selected per query (default 512)")
    parser.add_argument("--batch", type=int, default=4, help="sequences in the batched decode (default 4)")
    parser.add_argument("--contexts", type=str, default=None, help="comma-separated context lengths")
    parser.add_argument("--index-dtype", choices=("auto", "bfloat16", "float32"), default="auto",
                        help="dtype of the cached indexer keys (default auto: bfloat16 where the CPU has it natively, "
                             "float32 where it would be emulated, many times slower)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.index_dtype == "auto":
        args.index_dtype = "bfloat16" if native_bf16() else "float32"
    index_dtype = getattr(torch, args.index_dtype)

    contexts = [int(c) for c in args.contexts.split(",")] if args.contexts else [4096, 16384, 32768]
    if not args.contexts and not args.quick:
        contexts.append(65536)
    prefill_upto = 16384 if args.quick else max(contexts)
    steps = 5 if args.quick else 10
    cfg = DSAConfig(n_layers=args.layers, n_heads=args.heads, index_topk=args.topk, max_seq_len=max(contexts) + 64)
    torch.manual_seed(0)
    model = DSATransformer(cfg).eval()
    layer0 = first_layers(model, 1)
    watch = Stopwatch(model)
    console = Console(width=140)
    threads = torch.get_num_threads()
    console.print(
        f"[bold]DSA vs dense attention[/bold], same weights: {cfg.n_layers} layer(s), dim {cfg.dim}, "
        f"{cfg.n_heads} heads, kv_lora_rank {cfg.kv_lora_rank}, indexer {cfg.index_n_heads} heads x "
        f"{cfg.index_head_dim} (keys cached in {args.index_dtype}), k = {cfg.index_topk}, float32 weights, "
        f"torch threads = {threads}"
    )

    rows: list[dict[str, float]] = []
    with torch.inference_mode():
        diff = max_abs_diff_k_ge_t(model, length=min(cfg.index_topk - 16, 480), steps=16)
        for ctx in contexts:
            prompt = torch.randint(0, cfg.vocab_size, (1, ctx))
            r: dict[str, float] = {"ctx": ctx}
            if ctx <= prefill_upto:
                for mode in ("dense", "sparse"):
                    cache = layer0.new_cache(1, ctx + 8, index_dtype=index_dtype)
                    with peak_rss() as peak:
                        t0 = time.perf_counter()
                        layer0(prompt, cache, mode=mode, last_only=True)
                        r[f"prefill_{mode}"] = time.perf_counter() - t0
                    r[f"peak_{mode}"] = peak["peak"]
                    del cache
            if args.quick:
                cache = random_cache(model, ctx, index_dtype)
            else:  # the decode cache holds the model's own latents and keys for the prompt
                cache = model.new_cache(1, ctx + 8, index_dtype=index_dtype)
                model(prompt, cache, mode="sparse", last_only=True)
            for mode in ("dense", "sparse"):
                split = watch.decode_split(model, cache, mode, steps)
                r[f"decode_{mode}"], r[f"attn_{mode}"] = split["total"], split["attention"]
                if mode == "sparse":
                    r["indexer"] = split["indexer"]
            wide = widen(cache, args.batch)
            for mode in ("dense", "sparse"):
                r[f"bdecode_{mode}"] = watch.decode_split(model, wide, mode, steps)["total"]
            del wide, cache
            rows.append(r)
            console.print(f"  {ctx:>6} tokens done", style="dim")
        # the same comparison on the default 16-head shape, at 32K
        small_heads: dict[str, float] = {}
        if 32768 in contexts:
            base = DSATransformer(dataclasses.replace(cfg, n_heads=DSAConfig().n_heads)).eval()
            base_watch = Stopwatch(base)
            cache = random_cache(base, 32768, index_dtype)
            for mode in ("dense", "sparse"):
                small_heads[mode] = base_watch.decode_split(base, cache, mode, steps)["total"]
            del cache, base

    title = f"same weights, k = {cfg.index_topk}, {threads} thread(s)"
    prefilled = [r for r in rows if "prefill_dense" in r]
    prefill = table(
        f"Prefill, one layer: {title}",
        ("context", "dense", "sparse", "speedup", "peak mem dense", "peak mem sparse"),
        [
            (
                f"{r['ctx'] // 1024}K",
                f"{r['prefill_dense']:.2f} s",
                f"{r['prefill_sparse']:.2f} s",
                f"{ratio(r, 'prefill'):.2f}x",
                mib(r["peak_dense"]),
                mib(r["peak_sparse"]),
            )
            for r in prefilled
        ],
    )
    decode = table(
        f"Decode step, {cfg.n_layers} layers, {cfg.n_heads} heads: {title}",
        (
            "context",
            "dense",
            "sparse",
            "speedup",
            "attn only",
            f"x{args.batch} dense",
            "sparse",
            "speedup",
            "indexer",
        ),
        [
            (
                f"{r['ctx'] // 1024}K",
                f"{r['decode_dense'] * 1e3:.1f} ms",
                f"{r['decode_sparse'] * 1e3:.1f} ms",
                f"{ratio(r, 'decode'):.2f}x",
                f"{ratio(r, 'attn'):.2f}x",
                f"{r['bdecode_dense'] * 1e3:.1f} ms",
                f"{r['bdecode_sparse'] * 1e3:.1f} ms",
                f"{ratio(r, 'bdecode'):.2f}x",
                f"{r['indexer'] / r['decode_sparse']:.0%}",
            )
            for r in rows
        ],
    )
    console.print(prefill)
    console.print(decode)
    console.print(
        f"batch 1 unless marked x{args.batch} ({args.batch} sequences, each at the context). attn only: the speedup "
        "of the layers' attention (MLA + indexer) inside the batch-1 step. indexer: its share of the sparse step."
        + (" Decode over random cached latents (--quick)." if args.quick else "")
    )
    if small_heads:
        console.print(
            f"default shape ({DSAConfig().n_heads} heads, {cfg.n_layers} layers) at 32K, batch 1: dense "
            f"{small_heads['dense'] * 1e3:.1f} ms, sparse {small_heads['sparse'] * 1e3:.1f} ms, "
            f"{small_heads['dense'] / small_heads['sparse']:.2f}x (fewer heads: less dense attention work per step, "
            "while the weights every step reads stay)"
        )

    per_token = model.new_cache(1, 1, index_dtype=index_dtype).bytes_per_token()
    mha = cfg.n_layers * cfg.n_heads * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim + cfg.v_head_dim) * 4
    console.print(
        f"cache bytes per token ({cfg.n_layers} layer(s)): MLA latent {per_token['latent']:,} (float32) + "
        f"indexer key {per_token['index']:,} ({args.index_dtype}) = {per_token['total']:,}; plain MHA K/V of the "
        f"same heads {mha:,} ({mha / per_token['latent']:.1f}x the latent, {mha / per_token['total']:.1f}x latent + "
        "indexer key)"
    )
    console.print(
        f"max |sparse - dense| logit difference with k >= T (prefill + 16 decode steps): {diff:.2e}"
    )

    at = {r["ctx"]: r for r in rows}
    headline: dict[str, Any] = {
        "threads": threads,
        "layers": cfg.n_layers,
        "heads": cfg.n_heads,
        "topk": cfg.index_topk,
        "index_dtype": args.index_dtype,
        "quick": args.quick,
        "cache_bytes_per_token_mla": per_token["latent"],
        "cache_bytes_per_token_indexer": per_token["index"],
        "cache_bytes_per_token_mha": mha,
        "max_abs_diff_k_ge_t": diff,
    }
    if 32768 in at:
        r = at[32768]
        headline |= {
            "decode_speedup_32k": round(ratio(r, "decode"), 2),
            "decode_speedup_32k_attention": round(ratio(r, "attn"), 2),
            f"decode_speedup_32k_batch{args.batch}": round(ratio(r, "bdecode"), 2),
            "decode_speedup_32k_16_heads": round(small_heads["dense"] / small_heads["sparse"], 2),
            "prefill_speedup_32k": round(ratio(r, "prefill"), 2) if "prefill_dense" in r else None,
            "indexer_share_32k": round(r["indexer"] / r["decode_sparse"], 3),
            "decode_ms_32k": {
                "dense": round(r["decode_dense"] * 1e3, 2),
                "sparse": round(r["decode_sparse"] * 1e3, 2),
            },
        }
    for r in prefilled:
        headline[f"prefill_speedup_{r['ctx'] // 1024}k"] = round(ratio(r, "prefill"), 2)
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
