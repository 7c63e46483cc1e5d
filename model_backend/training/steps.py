"""One optimiser step of each training stage (DeepSeek-V3.2's recipe at small scale, report §2.1):

1. `dense`: language-model training with dense attention (most of the budget).
2. `indexer`: warm-up of the lightning indexer alone (every other weight frozen), KL to the main attention summed
   over heads, attention still dense.
3. `sparse`: everything trains with top-k attention chosen by the indexer (k well below the trajectory length),
   LM loss for the main weights and KL over the selected set for the indexer, whose input is detached.

The forward pass is the model's own fused training path (`DSATransformer.train_hidden_states(fused=True)`: the
attention in the fused kernel, no [B, H, S, S] probabilities kept for the backward pass), and logits are computed
only at the positions that carry loss, which saves the vocabulary projection everywhere else.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from agentkit.backends.local.backend import checkpoint_paths
from agentkit.backends.local.checkpoint import load_checkpoint
from agentkit.backends.local.copy_head import copy_label_log_probs, spelling_variants
from agentkit.backends.local.errors import CheckpointError
from agentkit.backends.local.model import DSATransformer
from agentkit.backends.local.tokenizer import ChatTokenizer

from .recipe import Recipe, TrainError


def hidden_states(
    model: DSATransformer, ids: torch.Tensor, mode: str, token_weight: torch.Tensor | None, focus: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Final normalised hidden states [B, S, dim], the summed indexer loss and the focus loss averaged over layers
    (0 unless `focus` in sparse mode), for a training stage's mode: the model's fused training path."""
    return model.train_hidden_states(ids, mode=mode, token_weight=token_weight, fused=True, focus=focus)


@functools.cache
def compiled_hidden_states() -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`hidden_states` through `torch.compile`, made once per process: Dynamo keeps one graph per stage (mode and
    which weights train) and treats batch sizes and lengths as symbolic, so the length-sorted batches do not
    recompile it. The loss stays eager: the copy head's custom autograd function would break its graph anyway."""
    return torch.compile(hidden_states, dynamic=True)


def lm_loss(
    model: DSATransformer, h: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted mean next-token cross-entropy, plain mean over the generated tokens alone); logits only where a
    token carries weight. `weight` [B, S] is a float weight per token or a boolean target mask. With a copy head
    the probability is the mixture's (`copy_head.py`), computed for the label alone."""
    w = weight[:, 1:].float()  # position t predicts token t + 1
    pred = w > 0
    hs = h[:, :-1][pred]  # [N, dim]
    labels = ids[:, 1:][pred]
    logits = model.vocab_logits(hs)
    if model.copy is None:
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
    else:
        ce = -copy_label_log_probs(model.copy, h, ids, pred, logits)
    wk = w[pred]
    generated = wk == 1.0
    target_mean = ce.detach()[generated].mean() if bool(generated.any()) else ce.new_zeros(())
    return (ce * wk).sum() / wk.sum(), target_mean


def stage_at(recipe: Recipe, step: int) -> tuple[str, int, int]:
    """(stage, step within it, steps in it) of global step `step`; ("done", 0, 0) past the end."""
    start = 0
    for name, n in recipe.stage_steps():
        if step < start + n:
            return name, step - start, n
        start += n
    return "done", 0, 0


def peak_lr(recipe: Recipe, stage: str) -> float:
    """The learning rate a stage warms up to."""
    return {"dense": recipe.lr, "indexer": recipe.indexer_lr, "sparse": recipe.sparse_lr}[stage]


def lr_at(recipe: Recipe, stage: str, i: int, n: int) -> float:
    """Linear warm-up then cosine decay to min_lr_ratio, per stage."""
    peak = peak_lr(recipe, stage)
    warm = min(recipe.warmup_steps, max(n // 10, 1))
    if i < warm:
        return peak * (i + 1) / warm
    t = (i - warm) / max(n - warm, 1)
    return peak * (recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model: DSATransformer, recipe: Recipe, stage: str) -> torch.optim.Optimizer:
    """Dense: the main weights. Indexer: only the indexers (everything else frozen). Sparse: both, each with its own
    loss (the indexer's input is detached, so the LM loss never reaches it)."""
    main, index = model.main_parameters(), model.indexer_parameters()
    for p in main:
        p.requires_grad_(stage != "indexer")
    for p in index:
        p.requires_grad_(stage != "dense")

    def groups(params: list[torch.nn.Parameter], lr: float) -> list[dict[str, Any]]:
        decay = [p for p in params if p.dim() >= 2]
        rest = [p for p in params if p.dim() < 2]
        return [{"params": decay, "weight_decay": recipe.weight_decay, "lr": lr, "base": lr},
                {"params": rest, "weight_decay": 0.0, "lr": lr, "base": lr}]  # fmt: skip

    if stage == "dense":
        param_groups = groups(main, recipe.lr)
    elif stage == "indexer":
        param_groups = groups(index, recipe.indexer_lr)
    else:
        param_groups = groups(main, recipe.sparse_lr) + groups(index, recipe.indexer_lr)
    return torch.optim.AdamW(param_groups, betas=(0.9, 0.95), eps=1e-8)


def train_step(
    model: DSATransformer, opt: torch.optim.Optimizer, recipe: Recipe, stage: str, scale: float,
    ids: torch.Tensor, target: torch.Tensor, real: torch.Tensor,
) -> dict[str, float]:  # fmt: skip
    """One optimiser step; returns the losses. `scale` multiplies each group's base learning rate."""
    for g in opt.param_groups:
        g["lr"] = g["base"] * scale
    mode = {"dense": "dense", "indexer": "dense+indexer", "sparse": "sparse"}[stage]
    weight = real.float()
    resolved = recipe.resolved()
    forward = compiled_hidden_states() if resolved.compile else hidden_states
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=resolved.bf16 is True):
        focus = stage == "sparse" and recipe.focus_weight > 0
        h, index_loss, focus_loss = forward(model, ids, mode, weight, focus)
        lm, lm_target = lm_loss(model, h, ids, target) if stage != "indexer" else (None, None)
    out = {"index": float(index_loss.detach())}
    if focus:
        out["focus"] = float(focus_loss.detach())
    if lm is None or lm_target is None:
        loss = index_loss
        out["lm"] = float("nan")
    else:
        loss = lm + index_loss + recipe.focus_weight * focus_loss
        out["lm"] = float(lm_target)  # comparable across context weights: the generated tokens' loss
        if recipe.context_weight > 0:
            out["lm_weighted"] = float(lm.detach())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    out["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip))
    opt.step()
    return out


def initial_model(recipe: Recipe, tokenizer: ChatTokenizer) -> DSATransformer:
    """The recipe's model before its first step, in training mode: the vocabulary rounded up to a multiple of 64,
    weights drawn from the recipe's seed, the copy head's spelling table from the tokenizer."""
    config = recipe.model_config(-(-tokenizer.vocab_size // 64) * 64)
    if recipe.init:
        weights, _ = checkpoint_paths(recipe.init)
        try:
            model = load_checkpoint(weights, expected=config)
        except CheckpointError as exc:
            raise TrainError(f"cannot continue from {recipe.init}: {exc}; set the recipe's shape fields to the "
                             "checkpoint's (its manifest.json has them under 'recipe')") from exc  # fmt: skip
        return model.train()
    model = DSATransformer(config)
    model.reset_parameters(torch.Generator().manual_seed(recipe.seed))
    if model.copy is not None and model.copy.variants > 1:
        model.copy.set_variants(spelling_table(tokenizer))
    return model.train()


def spelling_table(tokenizer: ChatTokenizer) -> torch.Tensor:
    """The copy head's spelling variants of the tokenizer's tokens (special tokens have none)."""
    return spelling_variants(
        [b"" if tokenizer.is_special(i) else tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
    )
