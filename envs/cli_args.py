"""Argument checks shared by the `envs` and `eval` commands: every bad number, path or range is one line on stderr
and exit code 2, never a traceback (DESIGN §8)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from agentkit.errors import ConfigurationError


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make `parser` report a usage error as one line (`agentkit eval: error: ...`) and exit 2."""

    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class UsageError(ConfigurationError):
    """A bad path or combination found after parsing: printed as one line, exit 2."""


def readable_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p} does not exist")
    if not p.is_file():
        raise UsageError(f"{what} {p} is not a file")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{what} {p} is not readable")
    return p


def writable_path(path: str | os.PathLike[str], what: str) -> Path:
    """A path a file can be written to (its folder exists and is writable; it is not a folder)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {p} is a folder; name a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what} {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"{what} {p} is not writable")
    return p
