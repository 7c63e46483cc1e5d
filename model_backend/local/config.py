"""The shape of the local DSA model (`DSAConfig`): every field is part of a checkpoint's identity, so a checkpoint
stores its config and loading refuses one that does not match (model.py holds the transformer itself)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .copy_head import MAX_VARIANTS


def field_check(cls: Any, data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(unknown keys of `data`, the dataclass's field names), both sorted: what a `from_dict` needs to refuse a
    stored config or recipe written by another version with a message that names the fields."""
    known = {f.name for f in dataclasses.fields(cls)}
    return sorted(set(data) - known), sorted(known)


@dataclass(frozen=True)
class DSAConfig:
    """Shape of the model. Every field is part of a checkpoint's identity."""

    vocab_size: int = 8192
    dim: int = 512
    n_layers: int = 4
    inter_dim: int = 1408  # SwiGLU hidden width
    # MLA (proportions of DeepSeek-V2-Lite / V3, scaled down)
    n_heads: int = 16
    q_lora_rank: int = 192
    kv_lora_rank: int = 128
    qk_nope_head_dim: int = 48
    qk_rope_head_dim: int = 16
    v_head_dim: int = 64
    attn_rope_interleaved: bool = True  # DeepSeek's MLA layout; the indexer is always rotate-half
    # lightning indexer (few small heads: it must stay much cheaper than the attention it prunes)
    index_n_heads: int = 4
    index_head_dim: int = 32
    index_topk: int = 512
    index_hadamard: bool = False  # fidelity switches (see dsa.py); off on the CPU
    index_fp8: bool = False
    # positions, norms, head
    max_seq_len: int = 65536
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = True
    init_std: float = 0.02
    copy_dim: int = 0
    """Query/key width of the copy head (a pointer over the context mixed into the output, see copy_head.py);
    0: no copy head, the output is plain logits."""
    copy_variants: int = 1
    """Spellings the copy head's pointer can output (copy_head.py): 1, the token as written; 3, also without and
    with a leading space (the table comes from the tokenizer: `CopyHead.set_variants`)."""

    def __post_init__(self) -> None:
        if self.qk_rope_head_dim % 2:
            raise ValueError(f"qk_rope_head_dim must be even, got {self.qk_rope_head_dim}")
        if self.qk_rope_head_dim > self.index_head_dim:
            raise ValueError(
                "the indexer applies RoPE to its first qk_rope_head_dim dims: need index_head_dim >= it"
            )
        if self.index_hadamard and self.index_head_dim & (self.index_head_dim - 1):
            raise ValueError("index_hadamard needs a power-of-two index_head_dim")
        if self.index_topk < 1:
            raise ValueError(f"index_topk must be >= 1, got {self.index_topk}")
        if self.copy_dim < 0:
            raise ValueError(f"copy_dim must be >= 0 (0: no copy head), got {self.copy_dim}")
        if not 1 <= self.copy_variants <= MAX_VARIANTS:
            raise ValueError(f"copy_variants must be 1..{MAX_VARIANTS}, got {self.copy_variants}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DSAConfig:
        unknown, known = field_check(cls, data)
        if unknown:
            raise ValueError(f"unknown DSAConfig fields {unknown}; known fields are {known}")
        return cls(**data)

    @property
    def latent_dim(self) -> int:
        """Numbers cached per token and layer for MLA (kv latent + rope key)."""
        return self.kv_lora_rank + self.qk_rope_head_dim
