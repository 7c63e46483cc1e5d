"""Rotary position embeddings in the two layouts DeepSeek-V3.2 uses side by side.

MLA rotates its decoupled rope slice in the *interleaved* layout: adjacent pairs (x0, x1), (x2, x3), ... are
rotated by frequency 0, 1, ... . The lightning indexer must use the *rotate-half* (NeoX) layout: pair i is
(x_i, x_{i + d/2}). DeepSeek's first V3.2-Exp release applied the interleaved layout in the indexer too, and the
Nov-2025 fix switched the indexer to rotate-half; mixing them up silently degrades long-context recall, so the
layout is an explicit argument here, never a default hidden in a helper.

Both layouts use the same frequencies, so one (cos, sin) table serves both.
"""

from __future__ import annotations

import torch


def rope_tables(rope_dim: int, max_positions: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each [max_positions, rope_dim // 2], in float32."""
    if rope_dim % 2:
        raise ValueError(f"the rope dimension must be even, got {rope_dim}")
    inv_freq = 1.0 / (theta ** (torch.arange(0, rope_dim, 2, dtype=torch.float64) / rope_dim))
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, interleaved: bool) -> torch.Tensor:
    """Rotate the last dim of `x` ([..., d]) by the angles whose cos/sin ([..., d/2]) broadcast against it.

    interleaved=True pairs (x[2i], x[2i+1]) and keeps them adjacent in the output (MLA);
    interleaved=False pairs (x[i], x[i + d/2]) and keeps the halves apart (lightning indexer).
    """
    if interleaved:
        pairs = x.unflatten(-1, (-1, 2))  # [..., d/2, 2]
        a, b = pairs[..., 0], pairs[..., 1]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    a, b = x.chunk(2, dim=-1)  # [..., d/2] each
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)
