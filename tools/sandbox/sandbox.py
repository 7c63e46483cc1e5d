"""One sandbox: a hardened container whose runner executes Python (state kept across calls) and shell commands.

    async with Sandbox(limits=SandboxLimits(timeout=10)) as sb:
        await sb.run_python("x = 6 * 7")
        print((await sb.run_python("print(x)")).stdout)       # 42
        await sb.put_file("data.bin", b"...")                   # relative paths live in /work
        data = await sb.get_file("data.bin")

Every request is a round trip on the attached stream, serialised by a lock. A sandbox that lost its runner (the
container was killed, the stream ended, the runner stopped answering after a timeout, the caller was cancelled mid-
request) is dead: every later call raises `SandboxDied`, and its container is removed. It is never silently reused.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from agentkit import tracing
from agentkit.sandbox import engine
from agentkit.sandbox import image as image_mod
from agentkit.sandbox.errors import SandboxDied, SandboxError, SandboxUnavailable
from agentkit.sandbox.limits import SandboxLimits, parse_size
from agentkit.sandbox.stream import AttachStream

log = logging.getLogger("agentkit.sandbox")
HELLO_TIMEOUT = 30.0
FIX_RUNSC = (
    "apt-get install runsc, then register it: add "
    '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}} '
    "to /etc/docker/daemon.json and reload the engine (kill -HUP $(pidof dockerd))"
)


@dataclass(frozen=True)
class ExecResult:
    """What one execution produced. Output is decoded as UTF-8 (invalid bytes replaced)."""

    stdout: str
    stderr: str
    exit_code: int
    duration: float
    """Seconds the execution took inside the sandbox."""
    timed_out: bool = False
    truncated: bool = False
    """Output was cut (head and tail kept, a marker in between); the totals say how much there was."""
    output_limited: bool = False
    """The execution was stopped because it wrote more than `kill_output` bytes."""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    exc_type: str | None = None
    """Python only: the class name of an uncaught exception."""
    exc_message: str | None = None
    state_reset: bool = False
    """Python only: the interpreter was restarted (after a timeout or a crash), so earlier variables are gone."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @classmethod
    def from_answer(cls, header: dict[str, Any], payload: bytes) -> ExecResult:
        split = int(header.get("stdout_len", 0))
        return cls(
            stdout=payload[:split].decode("utf-8", errors="replace"),
            stderr=payload[split:].decode("utf-8", errors="replace"),
            exit_code=int(header.get("exit_code", 0)),
            duration=float(header.get("duration", 0.0)),
            timed_out=bool(header.get("timed_out")),
            truncated=bool(header.get("truncated")),
            output_limited=bool(header.get("output_limited")),
            stdout_bytes=int(header.get("stdout_total", 0)),
            stderr_bytes=int(header.get("stderr_total", 0)),
            exc_type=_text(header.get("exc_type")),
            exc_message=_text(header.get("exc_message")),
            state_reset=bool(header.get("state_reset")),
        )


def _text(value: Any) -> str | None:
    """A string field of an answer as valid text: JSON can carry lone surrogates (`\\ud800`) that no encoder
    accepts later, so they become U+FFFD here, like invalid bytes in the output."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class Sandbox:
    """A started container with its runner; use as `async with`, or `await start()` and `await close()`."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        image: str | image_mod.ImageSpec | None = None,
        image_tag: str | None = None,
    ) -> None:
        """`image`: a built-in image's name ("data"), an `ImageSpec`, or a tag; `image_tag` is the older spelling."""
        self.limits = limits or SandboxLimits()
        self.image: str | image_mod.ImageSpec | None = image if image is not None else image_tag
        self.image_tag = image_tag
        self.container_id: str | None = None
        self._removed_id: str | None = None
        self._stream: AttachStream | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._dead: str | None = None
        self._closed = False
        self.started_at = 0.0
        self.uid: int | None = None
        """The uid the code runs as in this sandbox (its own: drawn per sandbox unless `limits.user` is set)."""
        self.hello: dict[str, Any] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> Sandbox:
        """Create, attach and start the container, then wait for the runner's hello."""
        if self.container_id is not None:
            raise SandboxError("this sandbox was already started")
        t0 = time.monotonic()
        address = engine.EngineAddress.from_env()
        await engine.call(engine.client)
        await engine.call(engine.reap_once)
        self.image_tag = await engine.call(image_mod.require_image, self.image)
        try:
            stream = await self._create_and_start(address)
            async with asyncio.timeout(HELLO_TIMEOUT):
                hello, _ = await stream.receive()
            if hello.get("op") != "hello":
                raise SandboxDied(f"the runner sent {hello!r} instead of its hello")
            self.hello = hello
        except BaseException as exc:
            stderr = self._runner_stderr()
            await asyncio.shield(self._destroy(f"start failed: {type(exc).__name__}: {exc}"))
            if isinstance(exc, EOFError | TimeoutError):
                raise SandboxDied(f"the sandbox runner did not start: {stderr}") from exc
            raise
        self.started_at = time.monotonic()
        log.debug("sandbox %s started in %.3f s", self.short_id, self.started_at - t0)
        return self

    async def _create_and_start(self, address: engine.EngineAddress) -> AttachStream:
        """Create, attach, start. An engine whose host withholds CAP_SYS_RESOURCE from every container (runc: "unable
        to apply caps") gets the runner without it, from then on in this process (`engine.runner_caps`)."""
        import docker.errors

        while True:
            caps = list(engine.runner_caps)
            cid = await engine.call_to_completion(self._create, caps)
            self._stream = await AttachStream.open(address, cid)
            try:
                await engine.call(engine.client().api.start, cid)
                return self._stream
            except docker.errors.APIError as exc:
                if "apply caps" not in str(exc) or "SYS_RESOURCE" not in caps:
                    raise
            log.info("this engine cannot grant CAP_SYS_RESOURCE: the runner's OOM score cannot be protected")
            if "SYS_RESOURCE" in engine.runner_caps:
                engine.runner_caps.remove("SYS_RESOURCE")
            self._stream.close()
            self._stream = None
            self.container_id = None
            await engine.call_to_completion(engine.remove_container, cid)

    def _create(self, caps: list[str]) -> str:
        """Create the container (blocking; on an engine thread). The id is recorded here, in the thread, so that a
        cancellation of `start()` during this call still knows what to remove."""
        import docker.errors

        api = engine.client().api
        try:
            created = self._create_with(api, caps)
        except docker.errors.ImageNotFound as exc:
            image_mod.forget(str(self.image_tag))
            raise SandboxUnavailable(
                f"the sandbox image {self.image_tag} is not built", fix=image_mod.fix_for(str(self.image_tag))
            ) from exc
        except docker.errors.APIError as exc:
            if self.limits.runtime and "runtime" in str(exc):
                raise SandboxUnavailable(
                    f"the engine has no runtime {self.limits.runtime!r}", fix=FIX_RUNSC
                ) from exc
            raise
        self.container_id = created["Id"]
        engine.track(created["Id"])
        return str(created["Id"])

    def _create_with(self, api: Any, caps: list[str]) -> dict[str, Any]:
        runner_uid, self.uid = self.limits.uids()
        return api.create_container(
            self.image_tag,
            stdin_open=True,  # with detach=False the SDK also sets StdinOnce: when the owner's attach
            # closes (even by SIGKILL), the runner's stdin ends and it exits after the current request
            tty=False,
            labels=engine.labels(),
            user="0:0",  # the runner drops to runner_uid at once, keeping four capabilities (runner_privs.py)
            working_dir="/",
            environment={"AGENTKIT_UIDS": f"{runner_uid}:{self.uid}"},
            host_config=api.create_host_config(**self.limits.host_config(self.uid, caps=caps)),
        )

    async def close(self) -> None:
        """Remove the container (idempotent)."""
        self.retire()
        await asyncio.shield(self._destroy("closed"))

    def retire(self) -> None:
        """Refuse every further request at once (the container is removed by `close`)."""
        self._closed = True
        if self._dead is None:
            self._dead = "closed"

    async def _destroy(self, reason: str) -> None:
        if self._dead is None:
            self._dead = reason
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self.container_id is not None:
            cid, self.container_id = self.container_id, None
            self._removed_id = cid
            try:
                await engine.call_to_completion(engine.remove_container, cid)
            except Exception as exc:  # noqa: BLE001 - the reaper gets it next time; never mask the caller's error
                log.warning("could not remove sandbox container %s: %s", cid[:12], exc)

    @property
    def short_id(self) -> str:
        cid = self.container_id or self._removed_id or "-"
        return cid[:12]

    @property
    def alive(self) -> bool:
        return self._dead is None and self._stream is not None and not self._closed

    @property
    def died_reason(self) -> str | None:
        return None if self._closed else self._dead

    async def _death_reason(self) -> str:
        """Why the runner is gone, as precisely as the engine can tell (the OOM killer, a signal, its own error)."""
        stderr = self._runner_stderr()
        state: dict[str, Any] = {}
        if self.container_id is not None:
            try:
                info = await engine.call(engine.client().api.inspect_container, self.container_id)
                state = info.get("State", {})
            except Exception:  # noqa: BLE001 - the reason is a courtesy; the death is reported either way
                pass
        if state.get("OOMKilled"):
            return (
                "the container's runner was killed by the out-of-memory killer: the code held more than the "
                f"{self.limits.memory} memory limit outside what the killer could reclaim from it ({stderr})"
            )
        code = state.get("ExitCode")
        return f"the container's runner is gone (exit code {code}; {stderr})"

    def _runner_stderr(self) -> str:
        text = self._stream.stderr_text() if self._stream is not None else ""
        return text.strip() or "(the runner wrote nothing to stderr)"

    # -- requests -----------------------------------------------------------------------------------------------------

    async def _request(
        self, header: dict[str, Any], payload: bytes = b"", *, wait: float
    ) -> tuple[dict[str, Any], bytes]:
        """One round trip. Anything that leaves the stream in an unknown state kills the sandbox."""
        async with self._lock:
            if self._closed:
                raise SandboxError("this sandbox is closed")
            if self._dead is not None or self._stream is None:
                raise SandboxDied(
                    f"sandbox {self.short_id} is dead ({self._dead or 'not started'}); start a new one"
                )
            rid = next(self._ids)
            try:
                async with asyncio.timeout(wait):
                    await self._stream.send({**header, "id": rid}, payload)
                    answer, data = await self._stream.receive()
            except TimeoutError as exc:
                reason = f"the runner did not answer within {wait:g} s; the container was killed"
                await asyncio.shield(self._destroy(reason))
                raise SandboxDied(f"sandbox {self.short_id}: {reason}") from exc
            except (EOFError, ConnectionError) as exc:
                reason = await self._death_reason()
                await asyncio.shield(self._destroy(reason))
                raise SandboxDied(f"sandbox {self.short_id}: {reason}") from exc
            except BaseException:  # cancelled mid-request or a protocol error: the stream is out of step
                await asyncio.shield(self._destroy("interrupted in the middle of a request"))
                raise
            if answer.get("id") != rid:
                await asyncio.shield(self._destroy("the runner answered out of order"))
                raise SandboxDied(
                    f"sandbox {self.short_id}: the runner answered request {answer.get('id')}, not {rid}"
                )
            if not answer.get("ok"):
                raise _request_error(answer, header)
            return answer, data

    async def _exec(self, op: str, text: str, timeout: float | None) -> ExecResult:  # noqa: ASYNC109 - enforced by the runner / engine, not a caller-side cancel
        opts = self.limits.runner_options(timeout)
        # A span per execution (no-op unless tracing is on). The code itself is not an attribute: it is the model's
        # text, may be large, and may carry what a tool argument marked secret would not.
        with tracing.span(f"sandbox.exec {op}", **{"agentkit.sandbox.op": op, "agentkit.sandbox.code_chars": len(text),
                                                   "agentkit.sandbox.container": (self.container_id or "")[:12]}) as s:  # fmt: skip
            answer, data = await self._request(
                {"op": op, "opts": opts},
                text.encode("utf-8", errors="surrogatepass"),
                wait=opts["timeout"] + self.limits.grace,
            )
            result = ExecResult.from_answer(answer, data)
            if s is not None:
                s.set_attribute("agentkit.sandbox.exit_code", result.exit_code)
                s.set_attribute("agentkit.sandbox.timed_out", result.timed_out)
                s.set_attribute("agentkit.sandbox.duration_s", result.duration)
        return result

    async def run_python(self, code: str, *, timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109 - enforced by the runner / engine, not a caller-side cancel
        """Run Python in this sandbox's interpreter; variables and imports persist to the next call."""
        return await self._exec("python", code, timeout)

    async def run_shell(self, command: str, *, timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109 - enforced by the runner / engine, not a caller-side cancel
        """Run `bash -c command` in /work; its background jobs are stopped when it returns."""
        return await self._exec("shell", command, timeout)

    async def put_file(self, path: str, data: bytes | str, *, mode: int = 0o644) -> str:
        """Write a file (relative paths are under /work); returns its absolute path in the sandbox."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        max_bytes = parse_size(self.limits.max_file)
        if len(payload) > max_bytes:
            raise OSError(errno.EFBIG, f"{len(payload)} bytes are more than max_file allows", path)
        answer, _ = await self._request(
            {"op": "put_file", "path": path, "mode": mode, "max_bytes": max_bytes},
            payload,
            wait=self.limits.timeout + self.limits.grace,
        )
        return str(answer["path"])

    async def get_file(self, path: str) -> bytes:
        """Read a file (relative paths are under /work), up to `limits.max_file` bytes."""
        _, data = await self._request(
            {"op": "get_file", "path": path, "max_bytes": parse_size(self.limits.max_file)},
            wait=self.limits.timeout + self.limits.grace,
        )
        return data

    async def ping(self, timeout: float = 5.0) -> float:  # noqa: ASYNC109 - enforced by the runner / engine, not a caller-side cancel
        """Round-trip time in seconds; raises `SandboxDied` if the runner does not answer."""
        t0 = time.perf_counter()
        await self._request({"op": "ping"}, wait=timeout)
        return time.perf_counter() - t0

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"dead: {self._dead}"
        return f"<Sandbox {self.short_id} {state}>"


def _request_error(answer: dict[str, Any], header: dict[str, Any]) -> Exception:
    """The runner's refusal as the matching OSError subclass (FileNotFoundError, ...), or a SandboxError."""
    err = int(answer.get("errno") or 0)
    message = str(answer.get("error", "unknown error"))
    if err:
        return OSError(err, message.split(": ", 1)[-1], header.get("path"))
    return SandboxError(message)
