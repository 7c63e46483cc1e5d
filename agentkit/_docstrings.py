"""Docstring parsing for `@tool`: a summary plus per-parameter text, from Google, NumPy or reST style.

Small on purpose: tool docstrings are short, and a wrong guess only costs a missing parameter description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_GOOGLE_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_GOOGLE_OTHER = {"returns", "return", "raises", "yields", "examples", "example", "notes", "note", "see also"}
_REST_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(?::\s*(.*))?$")


@dataclass
class Docstring:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str) -> Docstring:
    lines = doc.expandtabs().splitlines()
    summary_lines: list[str] = []
    for line in lines:
        s = line.strip()
        if not s or s.startswith(":") or s.rstrip(":").lower() in _GOOGLE_SECTIONS | _GOOGLE_OTHER:
            break
        summary_lines.append(s)
    out = Docstring(summary=" ".join(summary_lines))
    out.params.update(_rest_params(lines))
    out.params.update(_google_params(lines))
    out.params.update(_numpy_params(lines))
    return out


def _rest_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    current = None
    for line in lines:
        s = line.strip()
        m = _REST_PARAM.match(s)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and s and not s.startswith(":"):
            params[current] += " " + s
        else:
            current = None
    return params


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    in_section, base_indent, current = False, 0, None
    for line in lines:
        s = line.strip()
        indent = len(line) - len(line.lstrip())
        if s.rstrip(":").lower() in _GOOGLE_SECTIONS and s.endswith(":"):
            in_section, base_indent, current = True, -1, None
            continue
        if not in_section:
            continue
        if not s:
            continue
        if base_indent == -1:
            base_indent = indent
        if indent < base_indent or (s.endswith(":") and s.rstrip(":").lower() in _GOOGLE_OTHER):
            in_section = False
            continue
        m = _GOOGLE_ITEM.match(s) if indent == base_indent else None
        if m:
            current = m.group(1).lstrip("*")
            params[current] = m.group(3).strip()
        elif current:
            params[current] = (params[current] + " " + s).strip()
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(lines)
    while i < n:
        if (
            lines[i].strip().lower() in ("parameters", "other parameters")
            and i + 1 < n
            and set(lines[i + 1].strip()) == {"-"}
        ):
            i += 2
            base = None
            current = None
            while i < n:
                line = lines[i]
                s = line.strip()
                if i + 1 < n and s and set(lines[i + 1].strip()) == {"-"}:
                    break  # next section header
                indent = len(line) - len(line.lstrip())
                if s:
                    if base is None:
                        base = indent
                    if indent == base:
                        m = _NUMPY_ITEM.match(s)
                        current = m.group(1) if m else None
                        if current:
                            params[current] = ""
                    elif current:
                        params[current] = (params[current] + " " + s).strip()
                i += 1
            continue
        i += 1
    return params
