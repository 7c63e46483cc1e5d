"""The results store: one JSONL file of attempts that no command can lose a line of.

Guarantees (each one a test in tests/eval/test_results_store.py):
- **Appends are atomic and flushed.** A record is one `os.write` of one whole line to a file opened with O_APPEND:
  no Python buffer holds it, so a SIGKILL after the write loses nothing, and a write cut short by a kill leaves at
  most one torn line at the end. Before appending to a file whose last line is torn, a newline is written, so the
  torn fragment stays a line of its own and never swallows the next record. `close()` fsyncs.
- **Reading never writes.** `read()` opens the file read-only. A line that is not a valid record is reported with
  its number and skipped; the lines after it are read as usual. Only `repair()` (the explicit `agentkit eval
  repair` command) rewrites a file, and it keeps the original as a backup first.
- **Each attempt records its run.** Every attempt line carries the configuration that produced it (`config`) and
  the run's k; the header line repeats the configuration for a reader that wants it without the attempts.
- **The latest line of an attempt wins.** Appending is the only way to change a file, so re-running an attempt
  (`--retry-errors`) appends a new line for the same (task, attempt) key and readers keep the last one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentkit.errors import AgentkitError, ConfigurationError
from agentkit.messages import Message, dump_messages, parse_messages

RESULTS_VERSION = 2


class EvalError(AgentkitError):
    """The eval cannot run as asked (unreadable task file, results of another configuration in --out, ...)."""


class StoreMismatchError(EvalError, ConfigurationError):
    """--out holds results of another configuration or shard: a usage error (exit 2), never a reason to mix runs."""


@dataclass
class AttemptRecord:
    """One attempt at one task: the line of a results file."""

    task_id: str
    attempt: int
    family: str
    difficulty: int
    passed: bool
    status: str  # completed | empty_reply | max_turns | deadline | cancelled | error
    failures: list[str] = field(default_factory=list)  # the verifier's full verdict, uncut
    error: str | None = None
    error_type: str | None = None
    infra: bool = False  # ended on an infrastructure failure: not an outcome; `--retry-errors` re-runs it
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit_tokens: int = 0
    cost: float = 0.0
    wall_time: float = 0.0
    output: str | None = None
    diff: dict[str, Any] | None = None  # the state change the agent made (what the verifier compared)
    transcript_z: str = ""  # zlib-compressed JSON transcript, base64: the full run, reasoning included
    k: int = 1  # the k of the run that produced the attempt
    config: dict[str, Any] = field(default_factory=dict)  # the run's configuration (model, provider, max_turns, ...)
    kind: str = "attempt"

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.attempt)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def outcome(self) -> str:
        """passed | failed | infra_error | error: what a person filters a report by."""
        if self.infra:
            return "infra_error"
        if self.passed:
            return "passed"
        return "error" if self.status == "error" else "failed"

    def transcript(self) -> list[Message]:
        if not self.transcript_z:
            return []
        return parse_messages(zlib.decompress(base64.b64decode(self.transcript_z)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttemptRecord:
        names = cls.__dataclass_fields__
        rec = cls(**{k: v for k, v in d.items() if k in names})
        if not isinstance(rec.task_id, str) or not isinstance(rec.attempt, int) or isinstance(rec.attempt, bool):
            raise ValueError("task_id must be a string and attempt an integer")
        return rec


def compress_transcript(messages: Sequence[Message]) -> str:
    raw = json.dumps(dump_messages(list(messages)), ensure_ascii=False).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


@dataclass
class LineProblem:
    """A line of a results file that is not a record: skipped, never deleted by a reader."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Loaded:
    header: dict[str, Any] | None
    records: list[AttemptRecord]  # the latest line of each (task, attempt), in the order keys first appeared
    problems: list[LineProblem]
    lines: int  # attempt lines read (superseded ones included)

    @property
    def config(self) -> dict[str, Any]:
        if self.header is not None:
            return dict(self.header.get("config") or {})
        return dict(self.records[-1].config) if self.records else {}

    @property
    def k(self) -> int:
        """The run's k as recorded (the largest k any attempt was run with; else attempts per task)."""
        recorded = max((r.k for r in self.records), default=1)
        per_task: dict[str, int] = {}
        for r in self.records:
            per_task[r.task_id] = max(per_task.get(r.task_id, 0), r.attempt + 1)
        return max(recorded, max(per_task.values(), default=1))


def _parse(raw: bytes) -> dict[str, Any]:
    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


class ResultsStore:
    """An append-only JSONL file of attempts with a header line naming the configuration that produced it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> Loaded:
        """Header, records and the lines that are not records (by number). Opens the file read-only."""
        if not self.path.exists():
            return Loaded(None, [], [], 0)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise EvalError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        header: dict[str, Any] | None = None
        latest: dict[tuple[str, int], AttemptRecord] = {}
        problems: list[LineProblem] = []
        lines = 0
        raw_lines = data.split(b"\n")
        last = len(raw_lines) - 1
        for no, raw in enumerate(raw_lines, 1):
            if not raw.strip():
                continue
            torn = no - 1 == last  # no newline after it: a writer died mid-line
            try:
                obj = _parse(raw)
                kind = obj.get("kind")
                if kind == "header":
                    header = header or obj
                    continue
                if kind != "attempt":
                    raise ValueError(f"not a results record (kind {kind!r})")
                rec = AttemptRecord.from_dict(obj)
            except (ValueError, TypeError) as exc:
                why = "incomplete last line (a writer was killed mid-line)" if torn else f"not a valid record ({exc})"
                problems.append(LineProblem(no, why))
                continue
            lines += 1
            latest[rec.key] = rec
        return Loaded(header, list(latest.values()), problems, lines)

    def looks_like_results(self) -> bool:
        """False for a non-empty file whose first readable line is not a results line (a task file, say)."""
        try:
            with self.path.open("rb") as f:
                for raw in f:
                    if raw.strip():
                        try:
                            return _parse(raw).get("kind") in ("header", "attempt")
                        except ValueError:
                            return True  # a corrupt first line: a damaged results file is still one
        except FileNotFoundError:
            return True
        return True

    def open(self, header: dict[str, Any]) -> Appender:
        """An appender; writes `header` first into a new or empty file. Refuses a file that holds something else."""
        if not self.looks_like_results():
            raise ConfigurationError(f"{self.path} is not a results file (its first line is not a results record); "
                                     "choose another --out")  # fmt: skip
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigurationError(f"cannot write results to {self.path}: {exc.strerror or exc}") from None
        appender = Appender(fd, self.path)
        size = os.fstat(fd).st_size
        if size:
            with self.path.open("rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    appender.write_raw(b"\n")  # end a torn line so it never merges with the next record
        else:
            appender.write({**header, "kind": "header", "version": RESULTS_VERSION})
        return appender


class Appender:
    """Writes whole lines with one `os.write` each (no user-space buffer); `close()` fsyncs."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def write(self, obj: dict[str, Any]) -> None:
        self.write_raw((json.dumps(obj, ensure_ascii=False) + "\n").encode())

    def append(self, record: AttemptRecord) -> None:
        self.write(record.to_dict())

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_results(path: str | os.PathLike[str]) -> list[AttemptRecord]:
    return ResultsStore(path).read().records


def repair(path: str | os.PathLike[str]) -> tuple[Path, Loaded]:
    """Rewrite `path` without its unreadable lines (and superseded attempt lines), after copying the original to a
    backup next to it. Returns (backup path, what was kept). The new file replaces the old one atomically."""
    store = ResultsStore(path)
    if not store.exists():
        raise ConfigurationError(f"{path} does not exist")
    loaded = store.read()
    src = Path(path)
    backup = src.with_name(f"{src.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while backup.exists():
        backup = src.with_name(f"{src.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    shutil.copy2(src, backup)
    header = loaded.header or {"kind": "header", "version": RESULTS_VERSION, "config": loaded.config}
    write_results(src, header, loaded.records)
    return backup, loaded


def write_results(path: str | os.PathLike[str], header: dict[str, Any], records: Sequence[AttemptRecord]) -> None:
    """A whole results file, written beside its place and renamed over it (a crash leaves the old file whole)."""
    dst = Path(path)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps({**header, "kind": "header"}, ensure_ascii=False) + "\n")
            for r in records:
                f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {dst}: {exc.strerror or exc}") from None


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when two paths name one file (links and relative paths included)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()
