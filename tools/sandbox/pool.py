"""A pool of warm sandboxes, so acquiring one costs a ping instead of a container start.

    async with SandboxPool(size=4) as pool:
        async with pool.sandbox() as sb:       # near-instant when a warm one is ready
            await sb.run_python("print(1)")
        # on exit the used sandbox is destroyed and a fresh one starts in the background

A sandbox is never reused: state of one user (an agent run) must not reach another, so a released sandbox is
destroyed and replaced. Each acquired sandbox is pinged first, so a warm one that died while waiting is thrown away,
never handed out. When no warm sandbox is ready, `acquire` starts one itself (a cold start) rather than wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from agentkit.sandbox.errors import SandboxDied, SandboxError
from agentkit.sandbox.image import ImageSpec
from agentkit.sandbox.limits import SandboxLimits
from agentkit.sandbox.sandbox import Sandbox

log = logging.getLogger("agentkit.sandbox")


class SandboxPool:
    """Keeps `size` sandboxes started ahead of need (0 means: start each on demand)."""

    def __init__(
        self,
        size: int = 2,
        *,
        limits: SandboxLimits | None = None,
        image: str | ImageSpec | None = None,
        image_tag: str | None = None,
        max_starting: int = 4,
    ) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self.size = size
        self.limits = limits or SandboxLimits()
        self.image = image if image is not None else image_tag
        self.image_tag = image_tag
        self._ready: list[Sandbox] = []
        self._starting = 0
        self._starts: set[asyncio.Task[None]] = set()
        self._removals: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Event | None = None
        self._start_gate: asyncio.Semaphore | None = None
        self._max_starting = max_starting
        self._closed = False
        self.stats = {"warm_acquires": 0, "cold_acquires": 0, "discarded": 0, "start_failures": 0}
        self.last_error: BaseException | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _primitives(self) -> tuple[asyncio.Event, asyncio.Semaphore]:
        # Created on first use, inside the loop that uses the pool.
        if self._changed is None or self._start_gate is None:
            self._changed = asyncio.Event()
            self._start_gate = asyncio.Semaphore(self._max_starting)
        return self._changed, self._start_gate

    async def start(self, *, wait: bool = True) -> None:
        """Begin filling the pool; with `wait`, return once it is full (or raise the first start failure)."""
        self._fill()
        if wait:
            await self.wait_ready()

    async def wait_ready(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - enforced by the runner / engine, not a caller-side cancel
        """Wait until `size` warm sandboxes are ready."""
        changed, _ = self._primitives()
        async with asyncio.timeout(timeout):
            while len(self._ready) < self.size:
                if self.last_error is not None and self._starting == 0:
                    raise self.last_error
                changed.clear()
                await changed.wait()

    async def close(self) -> None:
        """Destroy warm sandboxes and wait for background starts and destroys to finish."""
        self._closed = True
        for task in list(self._starts):
            task.cancel()
        ready, self._ready = self._ready, []
        await asyncio.gather(
            *(sb.close() for sb in ready), *self._starts, *self._removals, return_exceptions=True
        )

    @property
    def warm(self) -> int:
        return len(self._ready)

    # -- acquire and release ------------------------------------------------------------------------------------------

    async def acquire(self) -> Sandbox:
        """A live sandbox for one user: a warm one if ready, else a fresh start."""
        if self._closed:
            raise SandboxError("this pool is closed")
        while self._ready:
            sb = self._ready.pop(0)
            try:
                await sb.ping(timeout=2.0)
            except SandboxDied as exc:
                log.warning("discarding a dead warm sandbox %s: %s", sb.short_id, exc)
                self.stats["discarded"] += 1
                await sb.close()
                continue
            finally:
                self._fill()  # after the ping, so the replacement's start does not slow this acquire down
            self.stats["warm_acquires"] += 1
            return sb
        self._fill()
        self.stats["cold_acquires"] += 1
        return await Sandbox(self.limits, image=self.image).start()

    async def release(self, sb: Sandbox) -> None:
        """Give a sandbox back: it is destroyed (never reused) in the background, and the pool tops up."""
        sb.retire()
        self._spawn(sb.close(), self._removals)
        self._fill()

    @contextlib.asynccontextmanager
    async def sandbox(self) -> AsyncIterator[Sandbox]:
        sb = await self.acquire()
        try:
            yield sb
        finally:
            await self.release(sb)

    # -- background work ----------------------------------------------------------------------------------------------

    @staticmethod
    def _spawn(coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _fill(self) -> None:
        if self._closed:
            return
        while len(self._ready) + self._starting < self.size:
            self._starting += 1
            self._spawn(self._start_one(), self._starts)

    async def _start_one(self) -> None:
        changed, gate = self._primitives()
        try:
            async with gate:
                sb = await Sandbox(self.limits, image=self.image).start()
            if self._closed:
                await sb.close()
            else:
                self._ready.append(sb)
                self.last_error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept for wait_ready(); acquire() starts cold and raises itself
            self.stats["start_failures"] += 1
            self.last_error = exc
            log.warning("could not start a warm sandbox: %s", exc)
        finally:
            self._starting -= 1
            changed.set()
