"""The in-sandbox side of an environment package: loads a package, runs its tools, solutions and verifiers.

This file is copied into the sandbox and run there by `python3 harness.py OP PKGDIR INPUT.json` (one fresh
interpreter per execution), or exec'd into the sandbox's persistent interpreter for an episode (`Session`). It is
stdlib-only and never imports agentkit: the sandbox has no agentkit installed, and model-written code (tools,
solutions, verifiers) only ever runs here, never on the host.

A package directory holds `env.json`, `tools.py`, `data.json` or `data.sql` (the SQLite data as SQL text) and
`tasks/<id>/{task.json, solution.py, verify.py}`. Tools are functions `fn(db, **arguments)`; `db` is a
`sqlite3.Connection` (rows as dicts) or the JSON state (a dict, mutated in place). A solution is
`solve(tools) -> answer` and may only call `tools.<name>(**arguments)`; a verifier is
`verify(initial, final, answer) -> bool | (bool, reason)` over the states as JSON.

Every execution is watched by an audit hook: network, subprocesses, native code and files outside the package are
refused everywhere (`escape`); while the solution runs (outside its tool calls) any file, database or non-allowed
import is refused (`direct_access`). The output is one JSON line, the last of stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
import types
from typing import Any

MAX_RESULT_CHARS = 16_000
SOLUTION_IMPORTS = frozenset({"math", "json", "re", "statistics", "itertools", "collections", "datetime",
                              "functools", "decimal", "fractions", "string", "operator"})  # fmt: skip
_ESCAPE_EVENTS = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.forkpty",
                  "os.kill", "ctypes.", "urllib.", "http.", "ftplib.", "os.chmod", "os.chown", "os.setuid",
                  "pty.", "resource.setrlimit", "sys.remote_exec", "os.putenv", "os.unsetenv", "webbrowser.")  # fmt: skip
sys.dont_write_bytecode = True
for _m in SOLUTION_IMPORTS:
    __import__(_m)

_PHASE = ["setup"]  # setup | tool | solution | verify
_PKG = [""]
VIOLATIONS: list[dict[str, str]] = []
_LIB_DIRS = tuple({os.path.dirname(os.__file__), sys.prefix, sys.base_prefix, "/usr/lib", "/usr/local/lib"})


class Refused(RuntimeError):
    """An operation the package may not do; also recorded in VIOLATIONS."""


def _refuse(kind: str, what: str) -> None:
    VIOLATIONS.append({"kind": kind, "phase": _PHASE[0], "what": what[:200]})
    raise Refused(f"{kind}: {what[:200]} is not allowed in an environment package")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    phase = _PHASE[0]
    if phase == "setup":
        return
    if event.startswith(_ESCAPE_EVENTS):
        _refuse("escape", f"{event} {args!r}"[:200])
    if phase == "solution":
        if event in ("open", "sqlite3.connect", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir"):
            _refuse("direct_access", f"{event} {str(args[0]) if args else ''}")
        if event == "import" and args and str(args[0]).split(".")[0] not in SOLUTION_IMPORTS:
            _refuse("direct_access", f"import {args[0]}")
    elif event == "open" and args and isinstance(args[0], str):
        path = os.path.realpath(args[0])
        mode = str(args[1]) if len(args) > 1 and args[1] is not None else "r"
        inside = path.startswith(_PKG[0] + os.sep)
        if not inside and (any(c in mode for c in "wax+") or not path.startswith(_LIB_DIRS)):
            _refuse("escape", f"open {path} ({mode})")


sys.addaudithook(_audit)


# ---------------------------------------------------------------------------------------------------------------------
# Data


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class Data:
    """One private copy of the package's data: `db` is what tools receive, `snapshot()` the state as JSON."""

    def __init__(self, pkg: str, meta: dict[str, Any]) -> None:
        self.kind = meta.get("data", "data.json")
        path = os.path.join(pkg, self.kind)
        if not os.path.exists(path) and self.kind.endswith((".sqlite", ".db")):
            path = os.path.join(pkg, "data.sql")  # a task record carries the database as SQL text
        if path.endswith((".sql", ".sqlite", ".db")):
            self.kind = "sqlite"
            self.db: Any = sqlite3.connect(":memory:", isolation_level=None)
            if path.endswith(".sql"):
                with open(path, encoding="utf-8") as fh:
                    self.db.executescript(fh.read())
            else:
                src = sqlite3.connect(path)
                src.backup(self.db)
                src.close()
            self.db.row_factory = lambda cur, row: {d[0]: v for d, v in zip(cur.description, row, strict=True)}
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            self.kind = "json"
            self.db = json.loads(text)

    def snapshot(self) -> Any:
        if self.kind == "json":
            return json.loads(canonical(self.db))
        out = {}
        tables = self.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                                 "ORDER BY name").fetchall()  # fmt: skip
        for t in tables:
            name = t["name"]
            out[name] = self.db.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()
        return out


def state_hash(state: Any) -> str:
    return hashlib.sha256(canonical(state).encode()).hexdigest()[:16]


def load_module(pkg: str, rel: str, name: str, restricted: bool = False) -> types.ModuleType:
    with open(os.path.join(pkg, rel), encoding="utf-8") as fh:
        src = fh.read()
    mod = types.ModuleType(name)
    mod.__file__ = os.path.join(pkg, rel)
    if restricted:
        mod.__dict__["__builtins__"] = _restricted_builtins()
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # noqa: S102 - runs inside the sandbox only
    return mod


def _restricted_builtins() -> dict[str, Any]:
    import builtins

    allowed = {k: v for k, v in vars(builtins).items()
               if k not in ("open", "exec", "eval", "compile", "input", "breakpoint", "globals", "vars", "help",
                            "memoryview", "__loader__", "__spec__")}  # fmt: skip

    def _import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] not in SOLUTION_IMPORTS:
            _refuse("direct_access", f"import {name}")
        return __import__(name, *args, **kwargs)

    allowed["__import__"] = _import
    return allowed


# ---------------------------------------------------------------------------------------------------------------------
# Tools


class Env:
    """The package loaded once per execution: tool functions, their specs, and a fresh data copy."""

    def __init__(self, pkg: str) -> None:
        _PKG[0] = os.path.realpath(pkg)
        with open(os.path.join(pkg, "env.json"), encoding="utf-8") as fh:
            self.meta = json.load(fh)
        self.pkg = pkg
        self.data = Data(pkg, self.meta)
        _PHASE[0] = "tool"
        try:
            self.module = load_module(pkg, "tools.py", "package_tools")
        finally:
            _PHASE[0] = "setup"
        self.schemas: dict[str, Any] = dict(getattr(self.module, "SCHEMAS", {}))
        self.log: list[dict[str, Any]] = []

    def call(self, name: str, args: Any) -> dict[str, Any]:
        """One tool call; never raises: a bad call or a failing tool is an error result the model can read."""
        entry: dict[str, Any] = {"tool": name, "args": args, "error": False}
        fn = getattr(self.module, name, None) if name in self.schemas else None
        before = state_hash(self.data.snapshot())
        if fn is None:
            entry.update(result=f"Error: unknown tool {name!r}; the tools are {sorted(self.schemas)}", error=True)
        elif not isinstance(args, dict):
            entry.update(result=f"Error: arguments for {name!r} must be a JSON object", error=True)
        else:
            outer, _PHASE[0] = _PHASE[0], "tool"
            try:
                value = fn(self.data.db, **args)
                text = value if isinstance(value, str) else canonical(value)
                entry["result"] = json.loads(canonical(value))
                if len(text) > MAX_RESULT_CHARS:
                    entry.update(result=f"Error: the result has {len(text)} characters (cap {MAX_RESULT_CHARS})",
                                 error=True, output_cap=True)  # fmt: skip
            except Refused as exc:
                entry.update(result=f"Error: {exc}", error=True)
            except TypeError as exc:
                entry.update(result=f"Error: bad arguments for {name!r}: {exc}", error=True)
            except Exception as exc:  # noqa: BLE001 - a failing tool is a result
                entry.update(result=f"Error: {exc}", error=True)
            finally:
                _PHASE[0] = outer
        entry["changed"] = state_hash(self.data.snapshot()) != before
        self.log.append(entry)
        return entry


class _Tools:
    """What a solution sees: one attribute per tool, nothing else."""

    def __init__(self, caller: Any, names: list[str]) -> None:
        for n in names:
            setattr(self, n, _bind(caller, n))


def _bind(caller: Any, name: str) -> Any:
    def tool(**kwargs: Any) -> Any:
        entry = caller(name, kwargs)
        if entry["error"]:
            raise ToolError(str(entry["result"]))
        return entry["result"]

    tool.__name__ = name
    return tool


class ToolError(Exception):
    """A tool refused a call (the solution may catch it)."""


def run_solution(pkg: str, task: str, caller: Any, names: list[str]) -> tuple[Any, str | None]:
    mod = load_module(pkg, f"tasks/{task}/solution.py", "package_solution", restricted=True)
    mod.__dict__["ToolError"] = ToolError
    _PHASE[0] = "solution"
    try:
        return mod.solve(_Tools(caller, names)), None
    except Refused as exc:
        return None, f"Refused: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        _PHASE[0] = "setup"


def verify(pkg: str, task: str, initial: Any, final: Any, answer: Any) -> dict[str, Any]:
    _PHASE[0] = "verify"
    try:
        mod = load_module(pkg, f"tasks/{task}/verify.py", "package_verify")
        got = mod.verify(initial, final, answer)
    except Exception as exc:  # noqa: BLE001 - a crashing verifier is a named discard
        return {"passed": False, "reason": f"{type(exc).__name__}: {exc}", "crashed": True}
    finally:
        _PHASE[0] = "setup"
    if isinstance(got, tuple):
        return {"passed": bool(got[0]), "reason": str(got[1]) if len(got) > 1 else ""}
    return {"passed": bool(got), "reason": "" if got else "the verifier rejected the final state or answer"}


def _answer_json(answer: Any) -> str | None:
    """The answer as the text an agent would reply with (what verifiers read)."""
    if answer is None or isinstance(answer, str):
        return answer
    if isinstance(answer, bool | int | float):
        return str(answer)
    return canonical(answer)


# ---------------------------------------------------------------------------------------------------------------------
# Operations (one per fresh interpreter)


def op_load(pkg: str, _inp: dict[str, Any]) -> dict[str, Any]:
    env = Env(pkg)
    missing = [n for n in env.schemas if not callable(getattr(env.module, n, None))]
    tasks = sorted(os.listdir(os.path.join(pkg, "tasks"))) if os.path.isdir(os.path.join(pkg, "tasks")) else []
    state = env.data.snapshot()
    sql = None
    if env.data.kind == "sqlite":
        env.data.db.row_factory = None
        sql = "\n".join(env.data.db.iterdump())
    return {"schemas": env.schemas, "sql": sql, "missing": missing, "tasks": tasks, "state_hash": state_hash(state),
            "tables": {k: len(v) for k, v in state.items()} if isinstance(state, dict) else {}}  # fmt: skip


def op_run(pkg: str, inp: dict[str, Any]) -> dict[str, Any]:
    env = Env(pkg)
    initial = env.data.snapshot()
    t0 = time.monotonic()
    answer, error = run_solution(pkg, inp["task"], env.call, sorted(env.schemas))
    final = env.data.snapshot()
    verdict = verify(pkg, inp["task"], initial, final, _answer_json(answer)) if error is None else None
    return {"calls": env.log, "answer": _answer_json(answer), "error": error, "verdict": verdict,
            "state_hash": state_hash(final), "initial": initial, "final": final, "seconds": time.monotonic() - t0}  # fmt: skip


def op_replay(pkg: str, inp: dict[str, Any]) -> dict[str, Any]:
    """Variants of a call list, each over fresh data and a fresh tools module, each verified with its answer."""
    out = []
    for variant in inp["variants"]:
        env = Env(pkg)
        initial = env.data.snapshot()
        for c in variant["calls"]:
            env.call(c["tool"], c["args"])
        final = env.data.snapshot()
        v = verify(pkg, inp["task"], initial, final, variant.get("answer"))
        out.append({**v, "state_hash": state_hash(final), "errors": sum(e["error"] for e in env.log)})
    return {"results": out}


def op_counterfactual(pkg: str, inp: dict[str, Any]) -> dict[str, Any]:
    """The solution with no data at all: every tool call is answered from the recording of a real run. A solution
    that reaches the data only through its tools behaves exactly as it did."""
    recorded = list(inp["recorded"])
    log: list[dict[str, Any]] = []

    def caller(name: str, args: Any) -> dict[str, Any]:
        i = len(log)
        rec = recorded[i] if i < len(recorded) else None
        if rec is None or rec["tool"] != name or canonical(rec["args"]) != canonical(args):
            entry = {"tool": name, "args": args, "result": "Error: not in the recording", "error": True}
        else:
            entry = {"tool": name, "args": args, "result": rec["result"], "error": rec["error"]}
        log.append(entry)
        return entry

    _PKG[0] = os.path.realpath(pkg)
    names = sorted(inp["tools"])
    answer, error = run_solution(pkg, inp["task"], caller, names)
    return {"calls": [{"tool": e["tool"], "args": e["args"]} for e in log], "answer": _answer_json(answer),
            "error": error}  # fmt: skip


OPS = {"load": op_load, "run": op_run, "replay": op_replay, "counterfactual": op_counterfactual}


class Session:
    """An episode's package in the sandbox's persistent interpreter: one private data copy, tool calls, a verdict."""

    def __init__(self, pkg: str, task: str) -> None:
        self.pkg, self.task = pkg, task
        self.env = Env(pkg)
        self.initial = self.env.data.snapshot()

    def call_json(self, name: str, args_json: str) -> str:
        return canonical(self.env.call(name, json.loads(args_json)))

    def verify_json(self, answer_json: str) -> str:
        final = self.env.data.snapshot()
        v = verify(self.pkg, self.task, self.initial, final, json.loads(answer_json))
        return canonical({**v, "initial": self.initial, "final": final})


def main(argv: list[str]) -> None:
    """python3 harness.py OP PKGDIR INPUT.json OUTPUT.json"""
    op, pkg, path = argv[1], argv[2], argv[3]
    with open(path, encoding="utf-8") as fh:
        inp = json.load(fh)
    try:
        out = OPS[op](pkg, inp)
    except Exception as exc:  # noqa: BLE001 - the host reads the reason
        out = {"fatal": f"{type(exc).__name__}: {exc}"}
    out["violations"] = VIOLATIONS
    _PHASE[0] = "setup"
    with open(argv[4], "w", encoding="utf-8") as fh:  # a file: the result can exceed the captured output
        fh.write(canonical(out))
    sys.stdout.flush()
    os._exit(0)  # a tool's stray threads must not keep the interpreter alive


if __name__ == "__main__":
    main(sys.argv)
