"""Harbor export: the folders have the files the format requires, and they really work: the reference solution run
through the exported `tool` command earns reward 1 from tests/test.sh, doing nothing earns 0 (inside a sandbox)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agentkit.envs.generator import generate_records
from agentkit.envs.packages.harbor import export_task, export_tasks
from agentkit.envs.spec import TaskRecord

pytestmark = pytest.mark.docker


def test_exported_folders_have_the_required_files(gated_trip: list[TaskRecord], tmp_path: Path) -> None:
    roots = export_tasks(gated_trip, tmp_path)
    for root in roots:
        for rel in ("task.toml", "instruction.md", "environment/Dockerfile", "tests/test.sh", "solution/solve.sh"):
            assert (root / rel).is_file(), rel
        meta = tomllib.loads((root / "task.toml").read_text())
        assert meta["metadata"]["category"] == "trip planning" and meta["verifier"]["timeout_sec"] > 0
        assert not list((root / "environment").rglob("solution.py")), "the agent must not see the solution"
        assert not list((root / "environment").rglob("verify.py")), "nor the verifier"
    assert "tool search_flights" not in (roots[0] / "instruction.md").read_text()
    assert "`book_flight`" in (roots[0] / "instruction.md").read_text()


FAMILIES = ("hr", "travel", "dataset", "knowledge", "calendar")


def test_family_tasks_export_with_their_tool_code_vendored(tmp_path: Path) -> None:
    rec = generate_records(1, seed=3, fams=["travel"])[0]
    root = export_task(rec, tmp_path)
    vendor = root / "environment" / "app" / "vendor" / "agentkit" / "envs"
    assert (vendor / "runtime.py").is_file() and (vendor / "families" / "travel" / "tools.py").is_file()
    assert not (vendor / "families" / "hr").exists(), "only the families the task's tools need"
    env_json = (root / "environment" / "app" / "environment.json").read_text()
    assert "verifier" not in env_json and rec.task.instruction not in env_json, "the agent sees no solution"
    assert (root / "tests" / "record.json").is_file()
    assert "`" + rec.environment.tools[0].name + "`" in (root / "instruction.md").read_text()


async def _put_tree(sb, local: Path, remote: str) -> None:
    for p in sorted(local.rglob("*")):  # noqa: ASYNC240 - a handful of small local files
        if p.is_file():
            rel = p.relative_to(local).as_posix()
            await sb.run_shell(f"mkdir -p '{remote}/{Path(rel).parent.as_posix()}'")
            await sb.put_file(f"{remote}/{rel}", p.read_bytes(), mode=0o755)


async def test_exported_task_runs_and_verifies(gated_trip: list[TaskRecord], tmp_path: Path) -> None:
    from agentkit.sandbox import Sandbox

    root = export_task(gated_trip[0], tmp_path)
    env = "APP=/work/app LOGS=/work/logs"
    for solve, reward in ((True, "1"), (False, "0")):
        async with Sandbox() as sb:
            await _put_tree(sb, root / "environment" / "app", "/work/app")
            await _put_tree(sb, root / "tests", "/work/tests")
            await _put_tree(sb, root / "solution", "/work/solution")
            listed = await sb.run_shell(f"{env} /work/app/tool")
            assert "search_flights" in listed.stdout, listed.stderr
            if solve:
                res = await sb.run_shell(f"{env} bash /work/solution/solve.sh")
                assert res.exit_code == 0, res.stderr
            res = await sb.run_shell(f"{env} bash /work/tests/test.sh")
            assert res.exit_code == 0, res.stderr
            assert (await sb.get_file("/work/logs/verifier/reward.txt")).decode() == reward, res.stdout


async def test_exported_family_tasks_run_and_verify_without_agentkit(tmp_path: Path) -> None:
    """Generated tasks of several families: the sandbox has no agentkit installed, so the vendored code is all the
    tool command and the verifier have. Doing nothing earns 0, then the reference earns 1."""
    from agentkit.sandbox import Sandbox

    env = "APP=/work/app LOGS=/work/logs"
    for fam in FAMILIES:
        rec = generate_records(1, seed=11, fams=[fam])[0]
        root = export_task(rec, tmp_path)
        async with Sandbox() as sb:
            assert (await sb.run_shell("python3 -c 'import agentkit'")).exit_code != 0
            await _put_tree(sb, root / "environment" / "app", "/work/app")
            await _put_tree(sb, root / "tests", "/work/tests")
            await _put_tree(sb, root / "solution", "/work/solution")
            listed = await sb.run_shell(f"{env} /work/app/tool")
            assert rec.environment.tools[0].name in listed.stdout, (fam, listed.stderr)
            for solve, reward in ((False, "0"), (True, "1")):
                if solve:
                    res = await sb.run_shell(f"{env} bash -x /work/solution/solve.sh")
                    assert res.exit_code == 0, (fam, res.stderr)
                res = await sb.run_shell(f"{env} bash /work/tests/test.sh")
                assert res.exit_code == 0, (fam, res.stderr)
                got = (await sb.get_file("/work/logs/verifier/reward.txt")).decode()
                assert got == reward, (fam, solve, res.stdout, res.stderr)
