"""Save and load a DSA transformer: one safetensors file holding the weights and, in its metadata, the config.

A checkpoint is only ever loaded into the model it was written for: when the caller says which config it
expects and the file's differs, loading stops with the differing fields named, instead of failing later with a
shape error (or worse, silently running with other attention settings such as the top-k or the RoPE layout).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from .errors import CheckpointError
from .model import DSAConfig, DSATransformer

FORMAT = "agentkit-dsa/1"


def save_checkpoint(model: DSATransformer, path: str | Path) -> Path:
    """Write config + weights to `path` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "config": json.dumps(model.cfg.to_dict(), sort_keys=True)}
    save_model(model, str(path), metadata=metadata)  # drops the tied head's duplicate tensor
    return path


def read_config(path: str | Path) -> DSAConfig:
    """The config stored in a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: train one (`agentkit local train`) or fix the path"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file but not a DSA checkpoint (format {FORMAT!r} expected)"
        )
    try:
        return DSAConfig.from_dict(json.loads(metadata["config"]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} holds a config this version cannot use: {exc}") from exc


def load_checkpoint(path: str | Path, expected: DSAConfig | None = None) -> DSATransformer:
    """Build the model a checkpoint describes and load its weights (in eval mode).

    With `expected`, refuse a file whose config differs, naming each differing field.
    """
    config = read_config(path)
    if expected is not None and expected != config:
        mine, theirs = expected.to_dict(), config.to_dict()
        diffs = ", ".join(
            f"{k}: file has {theirs[k]!r}, expected {mine[k]!r}" for k in mine if mine[k] != theirs[k]
        )
        raise CheckpointError(
            f"checkpoint {path} was trained for another model shape ({diffs}); "
            "load it without an expected config, or use the checkpoint written for this config"
        )
    model = DSATransformer(config)
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, SafetensorError) as exc:
        raise CheckpointError(f"the weights in {path} do not fit its own config: {exc}") from exc
    return model.eval()
