"""Family registry. Each sub-package (a folder not starting with "_") is one family exposing `FAMILY`.

Adding a family = copying a folder and renaming it: discovery is automatic, so nothing else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from agentkit.envs.errors import SpecError
from agentkit.envs.family import Family, Op


@cache
def families() -> dict[str, Family]:
    """name -> Family, sorted by name (so generation order is stable)."""
    out: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or not info.ispkg:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        fam: Any = getattr(mod, "FAMILY", None)
        if isinstance(fam, Family):
            out[fam.name] = fam
    return out


@cache
def resolve(impl: str) -> Op:
    """The implementation named by a `ToolSpec.impl` ("family.op" or "kit.op")."""
    from agentkit.envs.families import _kit

    ns, _, op = impl.partition(".")
    table = _kit.OPS if ns == "kit" else (families()[ns].ops if ns in families() else None)
    if table is None or op not in table:
        raise SpecError(f"unknown tool implementation {impl!r}: is the family installed in envs/families/?")
    return table[op]
