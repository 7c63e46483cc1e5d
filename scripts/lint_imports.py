"""Check the layer contracts (.importlinter) over the `agentkit` namespace as it installs.

import-linter walks a package's folder, but `agentkit.backends`, `.sandbox`, `.search`, `.envs` and `.training` live
in the folders the design card fixes (model_backend/, tools/, envs/), mapped into the namespace by pyproject's
`package-dir`. So this stages the installed layout first (a tree of links built from that same mapping, never a
copy that could go stale) and runs `lint-imports` over it.

    python scripts/lint_imports.py      # exit code: lint-imports' own (0 when every contract holds)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(into: Path) -> None:
    """Link every module of every listed package where the wheel would put it."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = tool["package-dir"]
    for package in tool["packages"]:
        source = _source_dir(package, mapping)
        target = into.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            (target / module.name).symlink_to(module)


def _source_dir(package: str, mapping: dict[str, str]) -> Path:
    """The folder of a package: its own mapping, else its nearest mapped parent's folder plus the rest."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in mapping:
            return ROOT.joinpath(mapping[prefix], *parts[cut:])
    return ROOT.joinpath(*parts)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="agentkit-layers-") as tmp:
        stage(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        linter = Path(sys.executable).with_name("lint-imports")
        cmd = [str(linter) if linter.exists() else "lint-imports", "--config", str(ROOT / ".importlinter")]
        return subprocess.run(cmd, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
