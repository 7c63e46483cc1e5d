"""The local model: a small DeepSeek Sparse Attention (DSA) transformer that runs on the CPU.

model.py holds the transformer (MLA attention with a lightning indexer), config.py its shape, dsa.py the indexer,
top-k selection and indexer loss, cache.py the decoding cache, checkpoint.py safetensors I/O, backend.py the
`LocalDSABackend` and shipped.py the shipped model's factory. Its names load on first use (importing the package
alone does not import torch).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LocalDSABackend": ".backend",
    "DSACache": ".cache",
    "load_checkpoint": ".checkpoint",
    "read_config": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "CacheCapacityError": ".errors",
    "CheckpointError": ".errors",
    "LocalModelError": ".errors",
    "ATTN_MODES": ".model",
    "AttnMode": ".model",
    "DSAConfig": ".config",
    "DSATransformer": ".model",
    "TrainOutput": ".model",
    "shipped_backend": ".shipped",
}


def __getattr__(name: str) -> Any:
    """Import on first use, so that `agentkit`'s CLI can find `agentkit.training.cli` without importing torch."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)  # one list: every lazily exported name is public, and only those
