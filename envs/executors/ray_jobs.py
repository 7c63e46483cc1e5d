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

from agentkit.envs.executors.ray import ray_module


def connect(address: str | None = None) -> Any:
    """The `ray` module, initialised: joins the cluster at `address`, else the one this process already joined,
    else starts a local one."""
    ray = ray_module()
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


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
