"""The house: one import namespace that a user's own files cannot shadow, layers checked by import-linter, a
public surface that resolves, one version string, modules of a readable size.

These run the installed package from a directory the user owns (not the clone), because that is where a name
clash bites: Python puts the script's directory first on sys.path.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import agentkit
from agentkit.testing.scripted_server import auto_script

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
AGENTKIT = Path(sys.executable).with_name("agentkit")

# A user's project with the most common names we used to install at the top level.
USER_FILES = {
    "tools.py": '''
        def shout(text: str) -> str:
            """Upper-case a text.

            Args:
                text: what to shout.
            """
            return text.upper() + "!"
    ''',
    "envs/__init__.py": "RAISE = 'the user envs package'\n",
    "model_backend.py": "raise ImportError('the user model_backend module must never be imported by agentkit')\n",
    "notes/retry.md": "# Retry\n\nRetry with exponential backoff.\n",
    "notes/cache.md": "# Cache\n\nAn LRU cache.\n",
}


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    for name, text in USER_FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def _python(code: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python script.py` in the user's directory: sys.path[0] is that directory, as for any user script."""
    script = cwd / "my_agent.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_user_tools_envs_and_model_backend_do_not_shadow_ours(user_project: Path) -> None:
    proc = _python(
        """
        import asyncio, json
        from agentkit.search import SearchIndex
        from agentkit.envs.generator import generate_records
        import agentkit.sandbox, agentkit.backends, tools, envs

        async def main():
            index = SearchIndex("notes.sqlite")
            index.ingest("notes")
            hits = await index.search("backoff", k=1)
            records = generate_records(2, seed=3, difficulties=(1,))
            print(json.dumps({"hit": hits[0].title, "tasks": len(records), "user_tools": tools.shout("hi"),
                              "user_envs": envs.RAISE, "sandbox": agentkit.sandbox.Sandbox.__module__}))

        asyncio.run(main())
        """,
        user_project,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"hit": "Retry", "tasks": 2, "user_tools": "HI!", "user_envs": "the user envs package",
                   "sandbox": "agentkit.sandbox.sandbox"}  # fmt: skip


@pytest.mark.docker
def test_sandbox_runs_from_a_directory_with_a_user_tools_module(user_project: Path) -> None:
    from agentkit.sandbox import SandboxUnavailable, engine, image

    try:
        engine.client()
        image.require_image()
    except SandboxUnavailable as exc:
        pytest.skip(f"needs the Docker engine and the sandbox image ({exc}); `make test` sets both up")
    proc = _python(
        """
        import asyncio
        from agentkit.sandbox import Sandbox

        async def main():
            async with Sandbox() as sb:
                result = await sb.run_python("print(6 * 7)")
                print(result.stdout.strip())

        asyncio.run(main())
        """,
        user_project,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "42"


def test_cli_tool_from_the_current_directory(user_project: Path, serve) -> None:
    """`--tool tools:shout` finds the user's own tools.py in the current directory, as `python -m` would,
    without PYTHONPATH, and the CLI's own sub-commands still load."""
    srv = serve(auto_script)
    env = {**os.environ, "DEEPSEEK_BASE_URL": srv.base_url, "DEEPSEEK_API_KEY": "sk-x"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(AGENTKIT), "run", "shout something", "--tool", "tools:shout", "--json"],
                          cwd=user_project, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    tool_messages = [m for m in result["messages"] if m["role"] == "tool"]
    assert tool_messages and tool_messages[0]["name"] == "shout" and tool_messages[0]["content"].endswith("!")
    helps = subprocess.run([str(AGENTKIT), "--help"], cwd=user_project, env=env, capture_output=True, text=True)
    assert helps.returncode == 0
    for command in ("run", "demo", "sandbox", "search", "envs", "eval", "serve", "local"):
        assert f"    {command} " in helps.stdout, f"sub-command {command} missing from --help"


def test_unknown_tool_module_is_a_clear_error(user_project: Path) -> None:
    env = {**os.environ, "DEEPSEEK_API_KEY": "sk-x"}
    proc = subprocess.run([str(AGENTKIT), "run", "x", "--tool", "no_such_module:f"], cwd=user_project, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "cannot load tool 'no_such_module:f'" in proc.stderr and "Traceback" not in proc.stderr


def test_layer_contracts_hold() -> None:
    """import-linter over the namespace as installed (scripts/lint_imports.py stages the package-dir mapping)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_only_the_agentkit_namespace_is_installed() -> None:
    tool = PYPROJECT["tool"]["setuptools"]
    assert all(p == "agentkit" or p.startswith("agentkit.") for p in tool["packages"])
    assert all(name.startswith("agentkit") for name in tool["package-dir"])


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """A folder with an __init__.py under a mapped folder that pyproject does not list would be missing from a
    wheel while the editable install still finds it: the tests would pass and users would break."""
    tool = PYPROJECT["tool"]["setuptools"]
    listed = set(tool["packages"])
    for package, folder in tool["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *rel.parts]) if rel.parts else package
            inner = [ROOT / f for f in tool["package-dir"].values() if (ROOT / f) != (ROOT / folder)
                     and (ROOT / folder) in (ROOT / f).parents]  # fmt: skip
            mapped_elsewhere = any(d == init.parent or d in init.parent.parents for d in inner)
            if "__pycache__" in rel.parts or mapped_elsewhere:
                continue
            assert name in listed, f"{init.parent} holds package {name}, which pyproject.toml does not list"


@pytest.mark.parametrize("package", ["agentkit", "agentkit.backends", "agentkit.sandbox", "agentkit.search",
                                     "agentkit.envs", "agentkit.backends.local"])  # fmt: skip
def test_public_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{package}.__all__ repeats a name"
    for name in exported:
        if package == "agentkit.backends.local" and importlib.util.find_spec("torch") is None:
            pytest.skip("agentkit.backends.local needs torch: pip install -e '.[local]'")
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_one_version_string() -> None:
    assert importlib.metadata.version("agentkit") == agentkit.__version__
    proc = subprocess.run([str(AGENTKIT), "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"agentkit {agentkit.__version__}"
    assert "version" in PYPROJECT["project"]["dynamic"]


def test_typed_marker_ships() -> None:
    assert (Path(agentkit.__file__).parent / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["*"]


def test_no_module_over_600_lines() -> None:
    folders = [ROOT / f for f in ("agentkit", "model_backend", "tools", "envs")]
    sizes = {p: len(p.read_text().splitlines()) for f in folders for p in f.rglob("*.py")}
    over = {str(p.relative_to(ROOT)): n for p, n in sizes.items() if n > 600}
    assert not over, f"modules over 600 lines: {over}"
