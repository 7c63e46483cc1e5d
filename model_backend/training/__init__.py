"""Training the local DSA model on generated environments: data, the training loop, manifests and metrics.

It sits above both the local model (`agentkit.backends.local`) and the environments (`agentkit.envs`), whose tasks
are its data; neither of them imports it. One job per module: `recipe` (what determines a run), `data` (tasks ->
examples -> batches), `steps` (one optimiser step of each stage), `loop` (`Trainer`: runs, resumes, processes),
`manifest` (what a run records and costs), `metrics` (top-k recall, turn exact-match), `diagnose` (where turns go
wrong), `agent` (how agents drive the trained model), `cli` (`agentkit local`).

The names below load on first use: `agentkit local` is registered through `agentkit.training.cli` without
importing torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AGENT_SETTINGS": ".agent",
    "SYSTEM_PROMPT": ".agent",
    "agent_factory": ".agent",
    "STEPS_PER_PROCESS": ".loop",
    "Trainer": ".loop",
    "RecipeTiming": ".manifest",
    "time_recipe": ".manifest",
    "topk_recalls": ".metrics",
    "turn_exact_match": ".metrics",
    "TINY": ".recipe",
    "Recipe": ".recipe",
    "TrainError": ".recipe",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)  # one list: every lazily exported name is public, and only those
