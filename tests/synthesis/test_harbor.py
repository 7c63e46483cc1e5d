"""Harbor export: the folders have the files the format requires, and they really work: the reference solution run
through the exported `tool` command earns reward 1 from tests/test.sh, doing nothing earns 0 (inside a sandbox)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agentkit.envs.errors import SpecError
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


def test_family_tasks_say_why_they_do_not_export(tmp_path: Path) -> None:
    rec = generate_records(1, seed=3, fams=["hr"])[0]
    with pytest.raises(SpecError, match="environment-package"):
        export_task(rec, tmp_path)


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
