"""Every fenced code block of README.md runs here, as a user would run it, so the front door cannot rot.

- ```python blocks run in a subprocess; ```bash blocks run with bash (`-e`, so every command must succeed) in a fresh
  directory. Blocks of one README section share that directory and run in order (Quickstart 3's second block reads
  the task set its first block generated), so a block runs the blocks before it in its section first.
- Nothing reaches the network: every provider's `*_BASE_URL` points at a `ScriptedServer` the test starts (a real
  HTTP server speaking DeepSeek's wire format, enforcing V4's reasoning rule), so `RemoteBackend("deepseek", ...)`,
  `agentkit run --provider vllm` and the like run unchanged.
- A line that cannot run in a test (`make`, `pip install`, `git clone`: they install or download) is listed in
  NOT_RUN and checked for truth instead: the make target exists, the extra exists in pyproject.toml, the clone is
  shallow. Any other line runs.
- A block that needs Docker is marked in the README with `<!-- readme-test: docker -->` right above it (its test is
  marked `docker` and skips with the setup command when the engine or image is missing); `<!-- readme-test: torch -->`
  marks one that needs the `local` extra (skipped with the reason when torch is missing). A block with no language tag
  or an unknown one fails, and so does an unmarked block that evidently needs Docker or torch: nothing slips through.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentkit.testing.scripted_server import Reply, ScriptedServer, auto_script

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_BYTES = 20_000
LANGUAGES = ("python", "bash")
MARKS = ("docker", "torch")

# Lines that install or download: checked for truth (test_lines_that_cannot_run_are_true), never run.
NOT_RUN = re.compile(r"^\s*(make|pip install|git clone)\b")
# What evidently needs a part that a test machine may lack; such a block must carry the matching marker.
NEEDS = {
    "docker": re.compile(r"agentkit\.sandbox|--tool (python|shell)\b|agentkit sandbox "),
    "torch": re.compile(
        r"--provider local|agentkit\.backends\.local|agentkit\.training|agentkit local\b|agentkit serve"
    ),
}
# Output a block must print, beyond exiting 0 (keyed by a snippet that identifies the block).
EXPECT = {
    'RemoteBackend("deepseek", "deepseek-v4-flash")': ["completed Done. The tool said:", "tool call(s)"],
    "Sandbox(limits=SandboxLimits(timeout=5))": ["12.566 0", "URLError", "True"],
    "--provider vllm --model deepseek-ai/DeepSeek-V3.2": ["→ word_count", "completed"],
    "--tool python": ["→ python", "Done. The tool said: 16", "completed"],
    "--provider vllm --model oracle": ["pass@1", "100.0%"],
    "--provider local --max-tasks 3": ["pass@1"],
}


@dataclass
class Block:
    number: int
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    section: str
    marks: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return f"{self.number}-{self.lang or 'untagged'}-L{self.line}"


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    section, marks, lines = "", set[str](), text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        found = re.fullmatch(r"<!-- readme-test: ([\w ,]+) -->", line.strip())
        if found:
            marks = {m.strip() for m in found.group(1).replace(",", " ").split()}
        elif line.startswith("```"):
            lang, start, body = line[3:].strip(), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(len(blocks) + 1, start, lang, "\n".join(body) + "\n", section, marks))
            marks = set()
        elif line.strip():
            marks = set()  # a marker belongs to the block right below it
        i += 1
    return blocks


BLOCKS = parse(README.read_text(encoding="utf-8"))


def _runnable(block: Block) -> str:
    """The code of a block that runs: all of it, less a bash block's NOT_RUN lines."""
    if block.lang != "bash":
        return block.code
    return "\n".join(line for line in block.code.splitlines() if not NOT_RUN.match(line))


def _params() -> list[object]:
    out = []
    for b in BLOCKS:
        marks = [pytest.mark.docker] if "docker" in b.marks else []
        if "torch" in b.marks:  # the local model on 2 shared cores: beyond the suite's 300 s default
            marks.append(pytest.mark.timeout(900))
        out.append(pytest.param(b, id=b.id, marks=marks))
    return out


# ---------------------------------------------------------------------------------------------------------- shape


def test_readme_is_a_front_door() -> None:
    size = README.stat().st_size
    assert size <= MAX_BYTES, f"README.md is {size:,} bytes; at most {MAX_BYTES:,}: move detail to docs/"
    text = README.read_text(encoding="utf-8")
    for heading in (
        "## Install",
        "## Quickstart 1",
        "## Quickstart 2",
        "## Quickstart 3",
        "## The CLI at a glance",
    ):
        assert heading in text


def test_every_block_has_a_known_language_and_honest_markers() -> None:
    assert BLOCKS, "README.md has no code block"
    problems = []
    for b in BLOCKS:
        if b.lang not in LANGUAGES:
            problems.append(
                f"line {b.line}: fence tag {b.lang!r} is not one of {LANGUAGES}: the test cannot run it"
            )
        for mark in b.marks - set(MARKS):
            problems.append(f"line {b.line}: unknown marker {mark!r} (known: {MARKS})")
        for mark, pattern in NEEDS.items():
            if pattern.search(_runnable(b)) and mark not in b.marks:
                problems.append(
                    f"line {b.line}: the block needs {mark}; put <!-- readme-test: {mark} --> above it"
                )
    assert not problems, "\n".join(problems)


def test_links_to_docs_exist() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links, "the README links no docs page"
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert not missing, f"links to missing pages: {missing}"


def test_cli_tables_cover_every_sub_command() -> None:
    from agentkit.app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = set(sub.choices)  # type: ignore[arg-type]
    text = README.read_text(encoding="utf-8")
    glance = text[text.index("## The CLI at a glance") :]
    at_a_glance = set(re.findall(r"^\| `agentkit (\w+)", glance, re.M))
    exit_rows = set(re.findall(r"^\| `(\w+)", glance[glance.index("Exit codes") :], re.M))
    assert at_a_glance == commands, (
        f"sub-commands in `agentkit --help` but not at a glance: {commands - at_a_glance}"
    )
    assert commands <= exit_rows, f"sub-commands without exit codes: {commands - exit_rows}"


# ------------------------------------------------------------------------------------- lines that cannot run here


def _not_run_lines() -> list[tuple[int, str]]:
    return [(b.line, line.split("#")[0].strip()) for b in BLOCKS if b.lang == "bash"
            for line in b.code.splitlines() if NOT_RUN.match(line)]  # fmt: skip


def test_lines_that_cannot_run_are_true() -> None:
    """make targets exist, pip extras exist (and every extra is documented), the clone advice is a shallow clone."""
    makefile = (ROOT / "Makefile").read_text()
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    lines = _not_run_lines()
    assert lines, "the README shows no install line"
    seen_extras, problems = set(), []
    for where, line in lines:
        if m := re.fullmatch(r"make (\w[\w-]*)", line):
            if not re.search(rf"^{re.escape(m.group(1))}:", makefile, re.M):
                problems.append(f"line {where}: no make target {m.group(1)!r} in the Makefile")
        elif m := re.fullmatch(r"pip install -e (?:\.|'\.\[(\w+)\]')", line):
            if m.group(1):
                seen_extras.add(m.group(1))
                if m.group(1) not in extras:
                    problems.append(
                        f"line {where}: pyproject.toml has no extra {m.group(1)!r} (it has {sorted(extras)})"
                    )
        elif line.startswith("git clone"):
            if "--depth 1" not in line:
                problems.append(f"line {where}: the README advises a shallow clone: {line!r}")
        else:
            problems.append(
                f"line {where}: {line!r} is neither run nor checked; teach this test what makes it true"
            )
    if seen_extras != extras:
        problems.append(f"extras in pyproject.toml but not in the README: {sorted(extras - seen_extras)}")
    assert {line for _, line in lines if line.startswith("make")} >= {"make demo", "make test"}
    assert not problems, "\n".join(problems)


# -------------------------------------------------------------------------------------------------- running them


def script(body: dict[str, Any]) -> Reply:
    """`auto_script` (call the first tool with example arguments, then answer with its result), except that the
    sandbox's `python` tool gets real code, so the README's sandboxed run computes something."""
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if tools and tools[0] == "python" and body["messages"][-1]["role"] == "user":
        return Reply(
            reasoning="I will compute it.",
            tool_calls=[("python", json.dumps({"code": "print(2**100 % 97)"}))],
        )
    return auto_script(body)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(script, enforce="deepseek-v4") as srv:
        yield srv


@pytest.fixture(scope="module")
def runner(server: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Runner]:
    yield _Runner(server, tmp_path_factory)


class _Runner:
    """Runs blocks in a directory per README section, each once, earlier blocks of its section first."""

    def __init__(self, server: ScriptedServer, factory: pytest.TempPathFactory) -> None:
        self.server, self.factory = server, factory
        self.dirs: dict[str, Path] = {}
        self.done: dict[int, str | None] = {}  # block number -> None (passed) or the failure

    def env(self) -> dict[str, str]:
        from agentkit.backends.providers import PROFILES

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AGENTKIT_") and not k.endswith(("_API_KEY", "_BASE_URL"))
        }
        for (
            profile
        ) in PROFILES.values():  # every provider's server is the scripted one: nothing leaves this machine
            env[profile.base_url_env] = self.server.base_url
            if profile.api_key_env:
                env[profile.api_key_env] = "sk-readme-test"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["AGENTKIT_CACHE_DIR"] = str(self.factory.getbasetemp() / "cache")
        env["COLUMNS"] = "200"
        return env

    def run(self, block: Block) -> str:
        for earlier in BLOCKS:
            if (
                earlier.number >= block.number
                or earlier.section != block.section
                or earlier.number in self.done
            ):
                continue
            self.skip_if_missing(earlier)
            self._run_once(earlier)
            if self.done[earlier.number]:
                pytest.fail(
                    f"block {earlier.id}, which this one builds on, failed:\n{self.done[earlier.number]}"
                )
        return self._run_once(block, keep_output=True)

    def _run_once(self, block: Block, keep_output: bool = False) -> str:
        cwd = self.dirs.setdefault(block.section, self.factory.mktemp("readme"))
        if block.lang == "python":
            script = cwd / f"block_{block.number}.py"
            script.write_text(block.code)
            cmd = [sys.executable, str(script)]
        else:
            cmd = ["bash", "-e", "-u", "-o", "pipefail", "-c", _runnable(block)]
        timeout = 600 if "torch" in block.marks else 240
        child = subprocess.Popen(cmd, cwd=cwd, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)  # fmt: skip
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out = f"timed out after {timeout} s"
        finally:
            try:  # a background job the block left (the oracle server), or the whole block after a timeout
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
        failure = None if child.returncode == 0 else f"exit {child.returncode}:\n{out[-6000:]}"
        for snippet, wanted in EXPECT.items():
            if failure is None and snippet in block.code:
                missing = [w for w in wanted if w not in out]
                if missing:
                    failure = f"the output lacks {missing}:\n{out[-6000:]}"
        self.done[block.number] = failure
        if keep_output and failure:
            pytest.fail(
                f"README block at line {block.line} ({block.section}) failed: {failure}", pytrace=False
            )
        return out

    @staticmethod
    def skip_if_missing(block: Block) -> None:
        if "torch" in block.marks and importlib.util.find_spec("torch") is None:
            pytest.skip("needs torch: pip install -e '.[local]'")
        if "docker" in block.marks:
            from agentkit.sandbox import SandboxUnavailable, engine, image

            try:
                engine.client()
                image.require_image()
            except SandboxUnavailable as exc:
                pytest.skip(
                    f"needs the Docker sandbox ({exc}); run: bash scripts/ensure-docker.sh && agentkit sandbox build"
                )


@pytest.mark.parametrize("block", _params())
def test_readme_block_runs(block: Block, runner: _Runner) -> None:
    if block.lang not in LANGUAGES:
        pytest.fail(
            f"line {block.line}: a block tagged {block.lang!r} cannot be run; tag it python or bash",
            pytrace=False,
        )
    if not _runnable(block).strip():
        return  # install lines only: test_lines_that_cannot_run_are_true checks them
    runner.skip_if_missing(block)
    runner.run(block)


# ------------------------------------------------------------------------------- examples/, which the README names


def test_every_example_runs_in_some_test() -> None:
    """The README says each example runs in the test suite: every examples/*.py is named by a test module."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    unrun = [
        p.name
        for p in sorted((ROOT / "examples").glob("*.py"))
        if p.name not in tests and p.stem not in tests
    ]
    assert not unrun, f"examples no test runs: {unrun}"


def _run_example(name: str, cwd: Path) -> str:
    """Run an example from a directory outside the clone: it must need nothing but the installed namespace."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name)], cwd=cwd, capture_output=True, text=True,
                          timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_envs_quickstart_example(tmp_path: Path) -> None:
    out = _run_example("envs_quickstart.py", tmp_path)
    assert "Verdict(passed=True" in out


@pytest.mark.docker
def test_sandbox_quickstart_example(tmp_path: Path) -> None:
    _Runner.skip_if_missing(Block(0, 0, "python", "", "", {"docker"}))
    out = _run_example("sandbox_quickstart.py", tmp_path)
    assert "sum: 5050" in out and "Network is unreachable" in out and "timed_out=True" in out
    assert "'I am run A'" in out and "'I am run B'" in out
