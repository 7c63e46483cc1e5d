"""Checks of a package's code by reading it (`ast`), before anything runs: the first line of defence.

The second is the harness's audit hook in the sandbox, the third the sandbox itself (no network, read-only root,
an unprivileged user). A finding names its gate: `load` (does not parse), `escape` (reaches for the network,
processes, native code or the interpreter's internals) or `direct_access` (a solution that could reach the data
without the tools).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ESCAPE_MODULES = frozenset({"os", "sys", "subprocess", "socket", "ctypes", "shutil", "pathlib", "importlib",
                            "urllib", "http", "requests", "httpx", "pickle", "marshal", "signal", "threading",
                            "multiprocessing", "asyncio", "builtins", "pty", "resource", "gc", "inspect", "code",
                            "ftplib", "smtplib", "telnetlib", "webbrowser", "cffi", "mmap", "fcntl", "docker"})  # fmt: skip
ESCAPE_NAMES = frozenset({"__import__", "exec", "eval", "compile", "breakpoint", "globals", "locals", "vars"})
SOLUTION_IMPORTS = frozenset({"math", "json", "re", "statistics", "itertools", "collections", "datetime",
                              "functools", "decimal", "fractions", "string", "operator"})  # fmt: skip
DATA_WORDS = ("data.sqlite", "data.json", "data.sql", "sqlite3", "tools.py")


@dataclass(frozen=True)
class Finding:
    gate: str
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


def _imports(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def scan(source: str, file: str, *, solution: bool = False) -> list[Finding]:
    """Findings for one file; a solution is held to the stricter rule (plain computation and tool calls only)."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as exc:
        return [Finding("load", file, exc.lineno or 0, f"does not parse: {exc.msg}")]
    out: list[Finding] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        for mod in _imports(node):
            top = mod.split(".")[0]
            if top in ESCAPE_MODULES:
                out.append(Finding("escape", file, line, f"imports {mod}"))
            elif solution and top not in SOLUTION_IMPORTS:
                out.append(Finding("direct_access", file, line, f"imports {mod}: a solution may only call tools"))
        if isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            out.append(Finding("escape", file, line, f"uses the interpreter's internals ({node.attr})"))
        elif isinstance(node, ast.Name) and (node.id in ESCAPE_NAMES or node.id.startswith("__")):
            out.append(Finding("escape", file, line, f"calls {node.id}"))
        elif solution and isinstance(node, ast.Name) and node.id in ("open", "getattr", "setattr", "delattr"):
            out.append(Finding("direct_access", file, line, f"uses {node.id}: a solution may only call tools"))
        elif solution and isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            out.append(Finding("direct_access", file, line, f"reaches into {node.attr}"))
        elif solution and isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(w in node.value for w in DATA_WORDS):
                out.append(Finding("direct_access", file, line, f"names the data ({node.value[:40]!r})"))
    if solution and not any(isinstance(n, ast.FunctionDef) and n.name == "solve" for n in tree.body):
        out.append(Finding("load", file, 0, "defines no solve(tools) function"))
    return out


def scan_verifier(source: str, file: str) -> list[Finding]:
    out = scan(source, file)
    tree = None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return out
    if not any(isinstance(n, ast.FunctionDef) and n.name == "verify" for n in tree.body):
        out.append(Finding("load", file, 0, "defines no verify(initial, final, answer) function"))
    return out
