"""The local model: a small DeepSeek Sparse Attention (DSA) transformer that runs on the CPU.

model.py holds the transformer (MLA attention with a lightning indexer), dsa.py the indexer, top-k selection
and indexer loss, cache.py the decoding cache, checkpoint.py safetensors I/O. Importing this package imports
torch; agentkit itself never imports it eagerly.
"""

from .cache import DSACache
from .checkpoint import load_checkpoint, read_config, save_checkpoint
from .errors import CacheCapacityError, CheckpointError, LocalModelError
from .model import ATTN_MODES, AttnMode, DSAConfig, DSATransformer, TrainOutput

__all__ = [
    "ATTN_MODES",
    "AttnMode",
    "CacheCapacityError",
    "CheckpointError",
    "DSACache",
    "DSAConfig",
    "DSATransformer",
    "LocalModelError",
    "TrainOutput",
    "load_checkpoint",
    "read_config",
    "save_checkpoint",
]
