"""Plain jobs on a Ray cluster, for the commands whose unit of work is a pure function: `envs generate` (a chunk of
slots) and `envs synthesize` (one category).

`ordered_map(fn, jobs)` runs `fn(job)` as Ray tasks, `chunksize` jobs per task, and yields the results in the
order of `jobs`, like `multiprocessing.Pool.imap`; the driver keeps at most `window` chunks in flight
(backpressure: however many jobs there are, neither the driver nor the object store holds more). `fn` must be a
module-level function, so a worker on another node can import it. A job whose worker dies is re-run by Ray
(`max_retries`); a pure job gives the same result wherever it ran, so the output is the same bytes as a
single-process run.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agentkit.envs.executors.ray import connect


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(job) for job in chunk]


def ordered_map(fn: Callable[[Any], Any], jobs: Iterable[Any], *, address: str | None = None, chunksize: int = 32,
                window: int | None = None, max_retries: int = 3) -> Iterator[Any]:  # fmt: skip
    """`fn` over `jobs` on the cluster, results in the order of `jobs` (see the module docstring). Closing the
    iterator early (Ctrl-C, an error in the consumer) cancels the chunks still in flight."""
    ray = connect(address)
    remote = ray.remote(_run_chunk).options(num_cpus=1, max_retries=max_retries)
    window = window or 2 * cluster_cpus(ray)
    it = iter(jobs)
    pending: collections.deque[Any] = collections.deque()

    def submit() -> bool:
        chunk = [job for _, job in zip(range(chunksize), it, strict=False)]
        if chunk:
            pending.append(remote.remote(fn, chunk))
        return bool(chunk)

    try:
        while len(pending) < window and submit():
            pass
        while pending:
            results = ray.get(pending.popleft())
            submit()
            yield from results
    finally:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a chunk that already finished or whose worker is gone
                pass


def _synthesize_remote(spec: dict[str, Any], category: str, config: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """On a worker: one category into a folder of the worker's own; returns its result and its files."""
    import asyncio
    import tempfile
    from dataclasses import asdict
    from pathlib import Path

    from agentkit.envs.attempt import AgentSpec
    from agentkit.envs.packages.synthesizer import synthesize_category

    async def go(folder: Path) -> Any:
        backend = AgentSpec(**spec).backend()
        try:
            return await synthesize_category(backend, category, folder, config=config)
        finally:
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()

    with tempfile.TemporaryDirectory(prefix="agentkit-synth-") as tmp:
        res = asyncio.run(go(Path(tmp)))
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    return asdict(res), files


def _write_files(root: Any, files: dict[str, bytes]) -> None:
    for rel in sorted(files, key=lambda r: r.startswith("done/")):  # the marker that makes a re-run skip: last
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.startswith("logs/") and dest.exists():  # a log keeps what earlier tries wrote
            with dest.open("ab") as fh:
                fh.write(files[rel])
        else:
            dest.write_bytes(files[rel])


def synthesize_category_on_ray(spec: dict[str, Any], out: Any, config: Any, *, address: str | None = None,
                               max_retries: int = 2) -> Callable[[str], Any]:  # fmt: skip
    """`synthesize`'s `run_category` for a Ray cluster: each category is one Ray task (re-run by Ray if its worker
    dies) that builds its backend from `spec` (an `AgentSpec` as a dict) on its node and synthesizes into a folder
    of its own; the driver writes the returned files under `out`, the `done/` marker last, so resume is the same
    as a local run's. The model's API key must be set in the workers' environment."""
    from pathlib import Path

    from agentkit.envs.packages.synthesizer import CategoryResult

    ray = connect(address)
    remote = ray.remote(_synthesize_remote).options(num_cpus=1, max_retries=max_retries)
    root = Path(out)

    async def run_category(category: str) -> CategoryResult:
        import asyncio

        res, files = await asyncio.wrap_future(remote.remote(spec, category, config).future())
        _write_files(root, files)
        return CategoryResult(**res)

    return run_category
