"""An episode's side of a package task: tool calls into the episode's sandbox session, the verdict from the
package's own verifier there, and the diff of the states it saw (for the results store)."""

from __future__ import annotations

from typing import Any

from agentkit.envs.errors import SpecError
from agentkit.envs.packages.box import PackageSession
from agentkit.envs.runtime import ToolResult, check_arguments
from agentkit.envs.spec import Diff, TaskRecord, ToolSpec, Verdict, empty_diff


def record_files(record: TaskRecord) -> dict[str, bytes]:
    """The package files a record carries, plus its one task, as they are laid out in the sandbox."""
    files = {k: v.encode() for k, v in record.environment.files.items()}
    info = record.meta.get("package", {})
    task = str(info.get("task", "task"))
    files[f"tasks/{task}/task.json"] = b"{}"
    files[f"tasks/{task}/solution.py"] = str(info.get("solution_py", "")).encode()
    files[f"tasks/{task}/verify.py"] = (record.verifier.program or "").encode()
    return files


def state_diff(before: Any, after: Any) -> Diff:
    """Rows changed, created and deleted per table (JSON data: per top-level key), for reports."""
    out = empty_diff()
    if not isinstance(before, dict) or not isinstance(after, dict):
        return out
    for table in sorted(set(before) | set(after)):
        b, a = before.get(table), after.get(table)
        if isinstance(b, list) and isinstance(a, list):
            created = [r for r in a if r not in b]
            deleted = [r for r in b if r not in a]
            if created:
                out["created"][table] = created
            if deleted:
                out["deleted"][table] = [str(r.get("id", i)) if isinstance(r, dict) else str(i)
                                         for i, r in enumerate(deleted)]  # fmt: skip
        elif a != b:
            out["changed"][table] = {"value": a}
    return out


class EpisodePackage:
    def __init__(self, record: TaskRecord, sandbox: Any) -> None:
        self.record = record
        self.session = PackageSession(sandbox, record_files(record), str(record.meta["package"]["task"]))
        self._diff: Diff = empty_diff()

    async def tool_result(self, name: str, args: Any, spec: ToolSpec | None) -> ToolResult:
        if spec is None:
            known = ", ".join(t.name for t in self.record.environment.tools)
            return ToolResult(name, args, f"Unknown tool '{name}'. Available tools: {known}", True)
        if not isinstance(args, dict):
            return ToolResult(name, args, f"Arguments for '{name}' must be a JSON object", True)
        problems = check_arguments(spec.parameters, args)
        if problems:
            return ToolResult(name, args, f"Invalid arguments for '{name}':\n" + "\n".join(f"- {p}" for p in problems[:8]), True)
        try:
            entry = await self.session.call(name, args)
        except Exception as exc:  # noqa: BLE001 - a sandbox failure is a result the model reads
            return ToolResult(name, args, f"Error: the tool failed in its sandbox: {type(exc).__name__}: {exc}", True,
                              crashed=True)  # fmt: skip
        return ToolResult(name, args, entry["result"], bool(entry["error"]))

    async def score(self, answer: str | None) -> Verdict:
        out = await self.session.verify(answer)
        self._diff = state_diff(self.session.initial, self.session.final)
        return Verdict(bool(out["passed"]), [] if out["passed"] else [out.get("reason") or "the verifier said no"])

    def diff(self) -> Diff:
        return self._diff


def session_for(record: TaskRecord, sandbox: Any) -> EpisodePackage:
    if sandbox is None:
        raise SpecError("this task is an environment package: its tools run in a sandbox; create the episode with "
                        "Episode(record, sandbox=sandbox) (agentkit eval does this)")  # fmt: skip
    return EpisodePackage(record, sandbox)
