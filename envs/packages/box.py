"""A package installed in a sandbox: the host's handle on `harness.py` (fresh interpreter per execution) and on an
episode's session (the sandbox's persistent interpreter). Uses only the `agentkit.sandbox.Sandbox` public API."""

from __future__ import annotations

import json
import posixpath
import time
from typing import Any

from agentkit.envs.packages.format import HARNESS_PATH

PKG_DIR = "/work/pkg"
HARNESS = "/work/harness.py"


class GateTimeout(Exception):
    """An execution ran past its time cap (a hanging tool, solution or verifier)."""


class GateOutput(Exception):
    """An execution wrote more output than allowed, or none that could be read."""


async def install(sandbox: Any, files: dict[str, bytes], root: str = PKG_DIR) -> None:
    """Copy the harness and a package's files into the sandbox."""
    dirs = sorted({posixpath.dirname(f"{root}/{p}") for p in files})
    res = await sandbox.run_shell("mkdir -p " + " ".join(f"'{d}'" for d in dirs))
    if res.exit_code != 0:
        raise GateOutput(f"could not create the package folders: {res.stderr.strip()}")
    await sandbox.put_file(HARNESS, HARNESS_PATH.read_bytes())
    for path, data in sorted(files.items()):
        await sandbox.put_file(f"{root}/{path}", data)


async def run_op(
    sandbox: Any, op: str, inp: dict[str, Any], *, timeout: float, root: str = PKG_DIR  # noqa: ASYNC109 - the sandbox's
) -> tuple[dict[str, Any], float]:
    """One harness operation in a fresh interpreter; (its JSON output, seconds)."""
    t0 = time.monotonic()
    await sandbox.put_file("/work/in.json", json.dumps(inp))
    res = await sandbox.run_shell(f"rm -f /work/out.json && python3 {HARNESS} {op} {root} /work/in.json /work/out.json",
                                  timeout=timeout)  # fmt: skip
    if res.timed_out:
        raise GateTimeout(f"'{op}' ran past its {timeout:g} s cap")
    if res.output_limited:
        raise GateOutput(f"'{op}' wrote more output than the sandbox keeps")
    try:
        out = json.loads(await sandbox.get_file("/work/out.json"))
    except (OSError, ValueError) as exc:
        tail = (res.stderr or res.stdout).strip()[-400:]
        raise GateOutput(f"'{op}' produced no result ({type(exc).__name__}); {tail}") from exc
    return out, time.monotonic() - t0


class PackageSession:
    """An episode's package in its sandbox: one private copy of the data in the sandbox's persistent interpreter;
    each tool call is a call into it, and the verdict is computed there by the package's own verifier."""

    def __init__(self, sandbox: Any, files: dict[str, bytes], task: str, *, timeout: float = 30.0) -> None:
        self.sandbox, self.files, self.task, self.timeout = sandbox, files, task, timeout
        self.started = False
        self.initial: Any = None
        self.final: Any = None

    async def start(self) -> None:
        if self.started:
            return
        await install(self.sandbox, self.files)
        res = await self.sandbox.run_python(
            f"exec(compile(open({HARNESS!r}).read(), 'harness', 'exec'), _h := {{'__name__': 'harness'}})\n"
            f"_S = _h['Session']({PKG_DIR!r}, {self.task!r})"
        )
        if not res.ok or res.exc_type:
            raise RuntimeError(f"the package did not load in the sandbox: {res.exc_type}: {res.exc_message}")
        self.started = True

    async def _eval(self, expr: str) -> Any:
        res = await self.sandbox.run_python(f"open('/work/session.json', 'w').write({expr})", timeout=self.timeout)
        if res.timed_out:
            raise GateTimeout(f"the call ran past its {self.timeout:g} s cap")
        if res.exc_type:
            raise RuntimeError(f"{res.exc_type}: {res.exc_message}")
        return json.loads(await self.sandbox.get_file("/work/session.json"))

    async def call(self, name: str, args: Any) -> dict[str, Any]:
        await self.start()
        return dict(await self._eval(f"_S.call_json({name!r}, {json.dumps(args)!r})"))

    async def verify(self, answer: str | None) -> dict[str, Any]:
        await self.start()
        out = dict(await self._eval(f"_S.verify_json({json.dumps(answer)!r})"))
        self.initial, self.final = out.pop("initial", None), out.pop("final", None)
        return out
