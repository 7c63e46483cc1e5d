"""What the CPU can do, for choices that depend on it (training precision) and for the figures that name it."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo, else `platform.processor()`): the recipe's time is a figure of the machine
    as much as of the recipe (machines of the same core count differ widely per step; docs/training.md), so the
    manifest records which."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware. Read from the CPU's flags (AVX512-BF16, AMX-BF16 on x86;
    BF16 on Arm; `cpuinfo`: the text of /proc/cpuinfo, read when not given), not timed, so the answer is the same on
    every run on the machine. Without /proc/cpuinfo (macOS, Windows) it is False: float32 is never the slow choice,
    emulated bfloat16 can be."""
    if cpuinfo is None:
        return _native_bf16_here()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def _native_bf16_here() -> bool:
    try:
        return native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False
