"""Training the local DSA agent model on the environments' reference trajectories, DeepSeek-V3.2's recipe at small scale.

Pipeline: `envs.generator` tasks (fixed seeds, every family, difficulty 1-3) -> `envs.trajectories.render` transcripts
-> rendered with the eval's system prompt and the DeepSeek-V3.2 chat format exactly as the agent loop will render
them at inference -> a byte-level BPE trained on those texts -> three stages (report §2.1):

1. `dense`: language-model training with dense attention (most of the budget). The loss covers only what the
   model generates (reasoning, content, tool calls, the end-of-turn token): the system prompt, tools, instruction
   and tool results are context, not targets.
2. `indexer`: warm-up of the lightning indexer alone (every other weight frozen), KL to the main attention summed
   over heads, attention still dense.
3. `sparse`: everything trains with top-k attention chosen by the indexer (k well below the trajectory length),
   LM loss for the main weights and KL over the selected set for the indexer, whose input is detached.

Why the dense stage has its own attention code: `DSATransformer.forward_train` builds the explicit attention
probabilities the indexer loss needs; the dense stage needs none, so it runs the same weights through the fused
`scaled_dot_product_attention` kernel, which is several times faster on the CPU. Logits are computed only at the
positions that carry loss (about a fifth of the tokens), which saves the vocabulary projection elsewhere.

Determinism and resume: the data, the tokenizer, the batches and their order are pure functions of the recipe; the
run state (weights, optimiser moments, step) is written atomically every `save_every` steps, and resuming from it
continues bit-for-bit the way an uninterrupted run would (same thread count).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from agentkit.errors import AgentkitError
from agentkit.messages import Message, SystemMessage
from envs.eval import DEFAULT_SYSTEM_PROMPT

from . import chat_format as cf
from .backend import MANIFEST_FILE, checkpoint_paths, save_local_checkpoint
from .checkpoint import load_checkpoint
from .copy_head import copy_label_log_probs, spelling_variants
from .cpu import cpu_name, native_bf16
from .dsa import attention_focus_loss, indexer_kl_loss, select_topk
from .errors import CheckpointError
from .model import DSAConfig, DSATransformer, field_check
from .tokenizer import ChatTokenizer, train_tokenizer

STATE_FILE = "train_state.pt"
RECIPE_FILE = "recipe.json"
LOG_FILE = "train_log.jsonl"
DATA_FILE = "dataset.pt"
STAGES = ("dense", "indexer", "sparse")

SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT
"""The model is trained with the eval harness's default system prompt (one definition, in envs.eval), so agents
driving it should use it."""


class TrainError(AgentkitError):
    """Training cannot run as asked (bad recipe, a run directory of another recipe, no usable data)."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a training run. Two runs with equal recipes (and thread counts) are identical."""

    seed: int = 0
    data_seed: int = 1_000_003
    """Generator seed of the training tasks. Evaluation uses other seeds (see benchmarks/bench_agent_quality.py)."""
    n_tasks: int = 20000
    difficulties: tuple[int, ...] = (1, 2, 3)
    families: tuple[str, ...] = ()
    """Empty: every family."""
    thinking: bool = True
    vocab_size: int = 4096
    max_len: int = 2560
    """Trajectories longer than this many tokens are left out (a handful at difficulty 3)."""
    # model shape (DSAConfig); vocab_size is fitted to the tokenizer
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 4
    inter_dim: int = 704
    q_lora_rank: int = 96
    kv_lora_rank: int = 64
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 48
    index_n_heads: int = 4
    index_head_dim: int = 32
    index_topk: int = 128
    copy_dim: int = 32
    """Width of the copy head's pointer queries and keys (copy_head.py); 0: no copy head."""
    copy_variants: int = 3
    """Spellings the pointer outputs: as written, without and with a leading space (copy_head.py)."""
    # optimisation
    batch_tokens: int = 6144
    """Padded tokens per step (batch rows x padded width of the batch)."""
    length_multiple: int = 64
    """Batches are padded to a width that is a multiple of this. Why: the CPU's matmul library (oneDNN) builds and
    caches a kernel per operand shape, and with every batch a new width (thousands of them) the cache never warms;
    64 leaves about 40 widths and costs about 2% more padding. A dense step was 10% faster (0.55 s against 0.61 s,
    compiled bf16 on an AMX Xeon, on the same 60 batches). 1: no rounding."""
    context_weight: float = 0.3
    """Loss weight of the tokens the model does not generate but that follow the system block (the user's
    instruction and the tool results), relative to 1 for the generated ones. Those tokens cost nothing extra to
    predict (the forward pass computes them anyway) and many of them are copies of values seen earlier in the
    conversation (a result echoes the arguments of its call), so they teach the copying the agent needs with
    several times more examples per step. 0: generated tokens only."""
    dense_steps: int = 4800
    indexer_steps: int = 100
    sparse_steps: int = 60
    focus_weight: float = 0.0
    """Weight of the focus loss in sparse training (dsa.attention_focus_loss: minus the log of the share of the
    dense attention mass on the indexer's top-k, averaged over layers), beside the LM loss of weight 1. The DeepSeek
    recipe has no such term; without it the dense attention of the trained weights keeps the spread the dense stage
    gave it, and top-k recall of its mass stays near what the best k tokens can keep (0.66 at k = 128 for the model
    of December 2026). 0: the plain recipe."""
    lr: float = 3e-3
    indexer_lr: float = 1e-3
    sparse_lr: float = 3e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    save_every: int = 50
    bf16: bool | None = None
    """bfloat16 autocast for the matmuls (weights and optimiser stay float32): faster on CPUs that multiply bfloat16
    natively (AVX512-BF16 or AMX: a dense step 1.46x eager on an EPYC, 1.27x compiled on an AMX Xeon, where eager it
    was 0.90x), same losses to within noise; on CPUs without (AVX2 only) PyTorch
    emulates it and a step is 20x slower than in float32. None: decide by the CPU (`native_bf16`), once per run
    directory (the decision is stored with the run, so a resumed run keeps its precision)."""
    compile: bool | None = None
    """Run the forward and backward passes through `torch.compile` (TorchInductor, which writes and builds C++ for
    the CPU): it fuses the elementwise work (norms, RoPE, SwiGLU, the autocast casts) that dominates an eager step
    of a model this small, and makes a step about 1.5x faster in bfloat16 (benchmarks/bench_train_speed.py), after a
    compilation of about a minute per stage. The numbers differ from eager ones by float rounding only. None: on
    where a C++ compiler is on the PATH, decided once per run directory like `bf16`."""

    init: str | None = None
    """A checkpoint directory to continue from (a fine-tune): the run starts from its weights and keeps its tokenizer,
    so the model shape fields must be the checkpoint's (a different one is refused with the fields named). With
    fresh data (another `data_seed`, your own `families`) and a few hundred steps per stage this adapts the shipped
    model instead of training one from scratch. None: random weights and a tokenizer trained on the run's data."""

    def __post_init__(self) -> None:
        if self.length_multiple < 1:
            raise TrainError(f"length_multiple must be >= 1 (1: no rounding), got {self.length_multiple}")
        if self.focus_weight < 0:
            raise TrainError(f"focus_weight must be >= 0 (0: the plain DeepSeek recipe), got {self.focus_weight}")
        if not 0.0 <= self.context_weight < 1.0:
            raise TrainError(f"context_weight must be in [0, 1) (generated tokens weigh 1), got {self.context_weight}")

    def model_config(self, vocab_size: int) -> DSAConfig:
        return DSAConfig(
            vocab_size=vocab_size, dim=self.dim, n_layers=self.n_layers, inter_dim=self.inter_dim,
            n_heads=self.n_heads, q_lora_rank=self.q_lora_rank, kv_lora_rank=self.kv_lora_rank,
            qk_nope_head_dim=self.qk_nope_head_dim, qk_rope_head_dim=self.qk_rope_head_dim,
            v_head_dim=self.v_head_dim, index_n_heads=self.index_n_heads, index_head_dim=self.index_head_dim,
            index_topk=self.index_topk, copy_dim=self.copy_dim, copy_variants=self.copy_variants,
            max_seq_len=8192,
        )  # fmt: skip

    def resolved(self) -> Recipe:
        """This recipe with `bf16` and `compile` decided for this machine."""
        return dataclasses.replace(
            self,
            bf16=native_bf16() if self.bf16 is None else self.bf16,
            compile=can_compile() if self.compile is None else self.compile,
        )

    def stage_steps(self) -> list[tuple[str, int]]:
        return [(s, n) for s, n in zip(STAGES, (self.dense_steps, self.indexer_steps, self.sparse_steps), strict=True)]

    @property
    def total_steps(self) -> int:
        return self.dense_steps + self.indexer_steps + self.sparse_steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        unknown, known = field_check(cls, data)
        if unknown:
            raise TrainError(f"unknown recipe fields {unknown}; known: {known}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


MACHINE_DECIDED = ("bf16", "compile")
"""Recipe fields that None leaves to the machine (`Recipe.resolved`)."""

TINY = Recipe(
    n_tasks=40, difficulties=(1,), vocab_size=512, dim=64, n_layers=2, n_heads=2, inter_dim=128, q_lora_rank=32,
    kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, index_n_heads=2, index_head_dim=16,
    index_topk=32, batch_tokens=4096, dense_steps=6, indexer_steps=2, sparse_steps=2, warmup_steps=2, save_every=2,
    compile=False,
)  # fmt: skip
"""A recipe of seconds, for tests and plumbing checks (eager: compiling would take longer than the run)."""


# --------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class Example:
    """One encoded trajectory: ids, and which of them the model must learn to generate."""

    task_id: str
    family: str
    difficulty: int
    ids: list[int]
    target: list[bool]  # target[i]: ids[i] is generated by the model (assistant turn), so it carries loss
    context_start: int = -1
    """Index of the first user marker: later non-target tokens carry `Recipe.context_weight`; -1: none do."""


def conversation(messages: Sequence[Message], system_prompt: str = SYSTEM_PROMPT) -> list[Message]:
    """A rendered trajectory with the agent's system prompt instead of the environment's persona: the tools travel
    in the request's tool list (the chat format's tools block), exactly as the agent loop sends them."""
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    return [SystemMessage(content=system_prompt), *rest]


def encode_conversation(
    tokenizer: ChatTokenizer, messages: Sequence[Message], tools: Sequence[dict[str, Any]], *, thinking: bool
) -> tuple[list[int], list[bool]]:
    """Token ids of a whole conversation and the mask of the tokens the model generates.

    The generation prompt of every assistant turn ends with the think marker (`<think>` in thinking mode, `</think>`
    otherwise) right after the user instruction or the tool results, and the turn ends with its EOS, so the targets
    are each span from such a marker (exclusive) to the next EOS (inclusive), counted from the first user turn (the
    tools block's own example uses the markers). A test checks this against rendering each turn's prompt separately.
    """
    prompt = cf.render(messages, tools, thinking=thinking)
    opener = cf.THINK_START if thinking else cf.THINK_END
    ids: list[int] = []
    target: list[bool] = []
    seen_user = in_turn = False
    for text, marker in prompt.parts:
        part = [tokenizer.special_ids[text]] if marker else tokenizer.encode(text)
        ids += part
        target += [in_turn] * len(part)
        if marker:
            if text == cf.USER:
                seen_user = True
            elif text == opener and seen_user and not in_turn:
                in_turn = True
            elif text == cf.EOS:
                in_turn = False
    return ids, target


def agent_tool_specs(record: Any) -> list[dict[str, Any]]:
    """The tool list exactly as the agent loop sends it for this task (`Tool.spec()` of the episode's tools): its
    JSON layout differs from the environment's own spec (key order), and the model must see at training what it
    will see at inference."""
    from envs.runtime import Episode

    return [t.spec() for t in Episode(record).tools()]


def generate_trajectories(recipe: Recipe, workers: int = 1) -> list[tuple[Any, list[Message], list[dict[str, Any]]]]:
    """(task record, conversation, tool specs) of the recipe's training tasks, in generator order."""
    from envs.generator import generate
    from envs.spec import TaskRecord
    from envs.trajectories import render

    out = []
    fams = list(recipe.families) or None
    for slot in generate(recipe.n_tasks, recipe.data_seed, fams, recipe.difficulties, workers=workers):
        if slot.line is None:
            continue
        record = TaskRecord.from_json(slot.line)
        out.append((record, conversation(render(record)), agent_tool_specs(record)))
    if not out:
        raise TrainError("the generator produced no tasks for this recipe")
    return out


def build_dataset(
    recipe: Recipe, log: Callable[[str], None] = print, workers: int = 1
) -> tuple[ChatTokenizer, list[Example]]:
    """Tasks -> transcripts -> tokenizer trained on them -> encoded examples (deterministic in the recipe)."""
    t0 = time.monotonic()
    trajectories = generate_trajectories(recipe, workers)
    log(f"data: {len(trajectories)} tasks generated (seed {recipe.data_seed}) in {time.monotonic() - t0:.1f}s")
    if recipe.init:
        tokenizer = ChatTokenizer.load(checkpoint_paths(recipe.init)[1])  # the weights were trained with these ids
    else:
        texts = [cf.render(msgs, tools, thinking=recipe.thinking).text for _, msgs, tools in trajectories]
        tokenizer = train_tokenizer(texts, recipe.vocab_size)
    examples = []
    for record, msgs, tools in trajectories:
        ids, target = encode_conversation(tokenizer, msgs, tools, thinking=recipe.thinking)
        if len(ids) <= recipe.max_len:
            examples.append(Example(record.task.task_id, record.task.family, record.task.difficulty, ids, target,
                                    ids.index(tokenizer.special_ids[cf.USER])))  # fmt: skip
    if not examples:
        raise TrainError(f"every trajectory is longer than max_len={recipe.max_len}; raise it")
    n_tok = sum(len(e.ids) for e in examples)
    n_tgt = sum(sum(e.target) for e in examples)
    log(
        f"data: {len(examples)} trajectories kept, {n_tok:,} tokens ({n_tgt:,} targets), vocab {tokenizer.vocab_size}, "
        f"{time.monotonic() - t0:.1f}s"
    )
    return tokenizer, examples


def save_dataset(path: Path, tokenizer: ChatTokenizer, examples: Sequence[Example], minutes: float) -> None:
    """The built dataset as flat tensors (about 2 bytes a token), written atomically: a run's later processes load it
    in seconds instead of generating and encoding it again (about 100 s for the full recipe)."""
    lengths = torch.tensor([len(e.ids) for e in examples], dtype=torch.int64)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"tokenizer": tokenizer.to_str(), "minutes": minutes, "lengths": lengths,
         "ids": torch.tensor([i for e in examples for i in e.ids], dtype=torch.int32),
         "target": torch.tensor([t for e in examples for t in e.target], dtype=torch.bool),
         "meta": [(e.task_id, e.family, e.difficulty, e.context_start) for e in examples]},
        tmp,
    )  # fmt: skip
    os.replace(tmp, path)


def load_dataset(path: Path) -> tuple[ChatTokenizer, list[Example], float]:
    """`save_dataset`'s tokenizer, examples and the minutes the build took."""
    saved = torch.load(path, weights_only=True)
    ends = saved["lengths"].cumsum(0).tolist()
    ids, target = saved["ids"].tolist(), saved["target"].tolist()
    examples = [
        Example(task_id, family, difficulty, ids[end - n : end], target[end - n : end], context_start)
        for (task_id, family, difficulty, context_start), end, n in zip(saved["meta"], ends, saved["lengths"].tolist(), strict=True)
    ]
    return ChatTokenizer.from_str(saved["tokenizer"]), examples, float(saved["minutes"])


def padded_length(n: int, multiple: int) -> int:
    """`n` rounded up to a multiple of `multiple`: the width a batch whose longest row is `n` is padded to."""
    return -(-n // multiple) * multiple


def make_batches(examples: Sequence[Example], batch_tokens: int, multiple: int = 1) -> list[list[int]]:
    """Indices of examples grouped by length so that padding stays small: rows x padded width <= batch_tokens, the
    width being the longest row rounded up to `multiple` (see `Recipe.length_multiple`)."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].ids), i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = padded_length(len(examples[i].ids), multiple)  # sorted: the newcomer is the longest
        if cur and (len(cur) + 1) * longest > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def batch_schedule(n_batches: int, seed: int) -> Iterator[int]:
    """An endless sequence of batch indices: each epoch a fresh permutation, deterministic in the seed."""
    epoch = 0
    while True:
        perm = list(range(n_batches))
        random.Random(seed * 1_000_003 + epoch).shuffle(perm)
        yield from perm
        epoch += 1


def collate(
    examples: Sequence[Example], pad_id: int, context_weight: float = 0.0, multiple: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, S], loss weights [B, S] (1 on generated tokens, `context_weight` on the instruction and
    tool results, 0 elsewhere) and real-token mask [B, S] (causal attention ignores the padding); S is the longest
    row rounded up to `multiple`."""
    width = padded_length(max(len(e.ids) for e in examples), multiple)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    weight = torch.zeros((len(examples), width))
    real = torch.zeros((len(examples), width), dtype=torch.bool)
    for b, e in enumerate(examples):
        n = len(e.ids)
        ids[b, :n] = torch.tensor(e.ids)
        target = torch.tensor(e.target, dtype=torch.bool)
        if context_weight > 0 and e.context_start >= 0:
            weight[b, e.context_start + 1 : n] = context_weight
        weight[b, :n][target] = 1.0
        real[b, :n] = True
    return ids, weight, real


# --------------------------------------------------------------------------------------------------------------------
# Forward passes and losses


def _dense_attention(attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """MLA with dense causal attention through the fused kernel: the same weights and maths as the model's dense
    mode (`MLA.forward_train(mode="dense")`), without materialising probabilities. A test checks they agree."""
    q_nope, q_pe, latent, _ = attn._project(x, cos, sin)
    k, v = attn._expand(latent)
    q = torch.cat((q_nope, q_pe), dim=-1)
    pad = attn.qk_dim - attn.v_dim
    if pad > 0:
        v = F.pad(v, (0, pad))
    elif pad < 0:
        q, k = F.pad(q, (0, -pad)), F.pad(k, (0, -pad))
    o = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, scale=attn.softmax_scale
    )
    return attn.wo(o.transpose(1, 2)[..., : attn.v_dim].flatten(2))


def _index_scores(q: torch.Tensor, w: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """`dsa.index_scores` in two batched matmuls, for training: the inference version tiles the keys to stay in
    the CPU cache, which under autograd becomes hundreds of small graph nodes. q [B, S, H, D], w [B, S, H],
    keys [B, T, D] -> [B, S, T]."""
    bsz, seqlen, n_heads, head_dim = q.shape
    logits = torch.relu(torch.matmul(q.reshape(bsz, seqlen * n_heads, head_dim), keys.transpose(1, 2)))
    return torch.matmul(w.unsqueeze(2), logits.view(bsz, seqlen, n_heads, -1)).squeeze(2)


def _indexed_attention(
    attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sparse: bool, weight: torch.Tensor | None,
    focus: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MLA plus the lightning indexer for the warm-up (`sparse=False`: dense attention, KL over every visible token)
    and sparse training (attention and KL over the indexer's top-k). The maths of `MLA.forward_train`, arranged for
    speed: the main attention runs in the fused kernel with the selection as its mask, and the indexer's target (the
    attention probabilities summed over heads) is computed without a graph, since no gradient flows through it.
    Returns (output, indexer loss, focus loss); the focus loss (`attention_focus_loss`, with gradient into the main
    attention's queries and keys) is computed only with `focus` in sparse training, else 0."""
    q_nope, q_pe, latent, qr = attn._project(x, cos, sin)
    k, v = attn._expand(latent)
    q = torch.cat((q_nope, q_pe), dim=-1)
    bsz, seqlen = x.shape[:2]
    causal = torch.ones(seqlen, seqlen, dtype=torch.bool).tril().expand(bsz, -1, -1)
    with torch.autocast("cpu", enabled=False):  # the indexer and its KL in float32: bf16 rounding breaks the KL
        f32 = (x.float(), qr.float(), cos, sin)
        q_idx, w_idx = attn.indexer.queries(*f32)
        index = _index_scores(q_idx, w_idx, attn.indexer.keys(f32[0], cos, sin))  # [B, S, S]
        index = index.masked_fill(~causal, float("-inf"))
        if sparse:
            sel, valid = select_topk(index.detach(), attn.topk)
            allowed = torch.zeros_like(causal).scatter_(-1, sel, valid)
        else:
            allowed = causal
        focus_loss = index.new_zeros(())
        if sparse and focus:  # all heads' logits at once, with a graph: the focus loss and the KL target share them
            logits = torch.einsum("bshd,bthd->bhst", q.float(), k.float()) * attn.softmax_scale
            focus_loss = attention_focus_loss(logits, causal, allowed, weight)
            with torch.no_grad():
                mass = logits.detach().masked_fill(~allowed.unsqueeze(1), float("-inf")).softmax(dim=-1).sum(1)
        else:
            with torch.no_grad():  # one head at a time: a [B, S, S] buffer per head, not per layer
                qt, kt = q.detach().float().transpose(1, 2), k.detach().float().transpose(1, 2)  # [B, H, S, d]
                mass = torch.zeros(bsz, seqlen, seqlen)
                for h in range(qt.shape[1]):
                    scores = torch.matmul(qt[:, h], kt[:, h].transpose(-1, -2)) * attn.softmax_scale
                    mass += scores.masked_fill_(~allowed, float("-inf")).softmax(dim=-1)
        loss = indexer_kl_loss(mass, index, allowed, weight)
    pad = attn.qk_dim - attn.v_dim
    if pad > 0:
        v = F.pad(v, (0, pad))
    elif pad < 0:
        q, k = F.pad(q, (0, -pad)), F.pad(k, (0, -pad))
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if sparse:
        o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed.unsqueeze(1), scale=attn.softmax_scale)
    else:
        o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=attn.softmax_scale)
    return attn.wo(o.transpose(1, 2)[..., : attn.v_dim].flatten(2)), loss, focus_loss


def hidden_states(
    model: DSATransformer, ids: torch.Tensor, mode: str, token_weight: torch.Tensor | None, focus: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Final normalised hidden states [B, S, dim], the summed indexer loss and the focus loss averaged over layers
    (0 unless `focus` in sparse mode), for a training stage's mode."""
    seqlen = ids.shape[1]
    cos, sin = model.rope_cos[None, :seqlen], model.rope_sin[None, :seqlen]
    h = model.embed(ids)
    index_loss = h.new_zeros(())
    focus_loss = h.new_zeros(())
    for block in model.blocks:
        x = block.attn_norm(h)
        if mode == "dense":
            h = h + _dense_attention(block.attn, x, cos, sin)
        else:
            out, layer_loss, layer_focus = _indexed_attention(block.attn, x, cos, sin, mode == "sparse",
                                                              token_weight, focus)  # fmt: skip
            h = h + out
            index_loss = index_loss + layer_loss
            focus_loss = focus_loss + layer_focus / len(model.blocks)
        h = h + block.ffn(block.ffn_norm(h))
    return model.norm(h), index_loss, focus_loss


@functools.cache
def compiled_hidden_states() -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`hidden_states` through `torch.compile`, made once per process: Dynamo keeps one graph per stage (mode and
    which weights train) and treats batch sizes and lengths as symbolic, so the length-sorted batches do not
    recompile it. The loss stays eager: the copy head's custom autograd function would break its graph anyway."""
    return torch.compile(hidden_states, dynamic=True)


@functools.cache
def can_compile() -> bool:
    """Whether `torch.compile` can build kernels here: TorchInductor's CPU backend needs a C++ compiler. Cached:
    `train_step` resolves its recipe every step, and this searches the PATH."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


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


# --------------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class RunState:
    step: int = 0  # global optimiser steps done, over all stages
    elapsed: float = 0.0  # training seconds so far (resumed runs add up)
    history: list[dict[str, Any]] = field(default_factory=list)


def stage_at(recipe: Recipe, step: int) -> tuple[str, int, int]:
    """(stage, step within it, steps in it) of global step `step`; ("done", 0, 0) past the end."""
    start = 0
    for name, n in recipe.stage_steps():
        if step < start + n:
            return name, step - start, n
        start += n
    return "done", 0, 0


def lr_at(recipe: Recipe, stage: str, i: int, n: int) -> float:
    """Linear warm-up then cosine decay to min_lr_ratio, per stage."""
    peak = {"dense": recipe.lr, "indexer": recipe.indexer_lr, "sparse": recipe.sparse_lr}[stage]
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


STEPS_PER_PROCESS = 500
"""A long run trains in fresh processes of this many steps each (`Trainer.steps_per_process`). Why: in one process
the step time creeps up, 0.55 s to 0.63 s per dense step within 700 steps (and 0.84 s by step 3,000) on the AMX Xeon,
while a fresh process resuming the same state steps at 0.555 s again; glibc's malloc and jemalloc alike (jemalloc was
slower still). A restart costs about 20 s (imports, the cached dataset, a warm-cache compile)."""


def _print(line: str) -> None:
    print(line, flush=True)


def _picklable(obj: object) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def _train_from_stdin() -> None:
    """Entry point of a training process started by `Trainer._run_in_processes`: a pickled (Trainer, stop_after)."""
    import pickle

    trainer, stop_after = pickle.loads(sys.stdin.buffer.read())
    trainer.run(stop_after)


class Trainer:
    """A training run in a directory: `run()` trains (resuming when the directory holds a run of the same recipe) and
    writes the final checkpoint (`checkpoint/`) plus `manifest.json` there."""

    def __init__(
        self, recipe: Recipe, run_dir: str | Path, *, threads: int | None = None, workers: int = 1,
        log: Callable[[str], None] | None = None, progress: bool | None = None,
        steps_per_process: int | None = STEPS_PER_PROCESS,
    ) -> None:  # fmt: skip
        self.recipe = recipe
        self.dir = Path(run_dir)
        self.threads = threads
        self.workers = workers
        self.log = log or _print
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.steps_per_process = steps_per_process

    # -- persistence --------------------------------------------------------------------------------------------

    def _check_recipe(self) -> None:
        """Refuse a directory of another recipe; store the recipe, with its precision decided, in a new one. A recipe
        that leaves `bf16` or `compile` to the machine takes the stored decision on resume, so a run keeps one."""
        path = self.dir / RECIPE_FILE
        if path.exists():
            stored = Recipe.from_dict(json.loads(path.read_text()))
            decided = {k: getattr(stored, k) for k in MACHINE_DECIDED if getattr(self.recipe, k) is None}
            self.recipe = dataclasses.replace(self.recipe, **decided)
            if stored != self.recipe:
                diffs = {k: (v, getattr(self.recipe, k)) for k, v in stored.to_dict().items()
                         if v != self.recipe.to_dict()[k]}  # fmt: skip
                raise TrainError(
                    f"{self.dir} holds a run of another recipe (stored vs asked: {diffs}); use another directory "
                    "or delete it to start over"
                )
        else:
            self.recipe = self.recipe.resolved()
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.recipe.to_dict(), indent=1) + "\n")

    def _save_state(self, model: DSATransformer, opt: torch.optim.Optimizer | None, state: RunState) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        torch.save(
            {"model": model.state_dict(), "opt": opt.state_dict() if opt else None,
             "step": state.step, "elapsed": state.elapsed, "history": state.history},
            tmp,
        )  # fmt: skip
        os.replace(tmp, self.dir / STATE_FILE)  # atomic: a kill mid-write leaves the previous state

    def _saved_step(self) -> int:
        path = self.dir / STATE_FILE
        # mmap: the step without reading the weights and optimiser moments beside it
        return int(torch.load(path, weights_only=True, mmap=True)["step"]) if path.exists() else 0

    def _dataset(self) -> tuple[ChatTokenizer, list[Example], float]:
        """The run's dataset, built once and cached in the run directory (`DATA_FILE`); the minutes are the build's."""
        path = self.dir / DATA_FILE
        if path.exists():
            tokenizer, examples, minutes = load_dataset(path)
            self.log(f"data: {len(examples)} trajectories from {path}")
            return tokenizer, examples, minutes
        t0 = time.monotonic()
        tokenizer, examples = build_dataset(self.recipe, self.log, self.workers)
        minutes = (time.monotonic() - t0) / 60  # generation, tokenizer, encoding: what every run of the recipe pays
        save_dataset(path, tokenizer, examples, minutes)
        return tokenizer, examples, minutes

    def _run_in_processes(self, end: int) -> Path | None:
        """Train to step `end` in a sequence of fresh processes of `steps_per_process` steps (see STEPS_PER_PROCESS),
        each resuming the state the previous one saved; the last writes the checkpoint."""
        import pickle
        import subprocess

        if getattr(self.log, "__module__", "__main__") == "__main__" or not _picklable(self.log):
            self.log = _print  # a lambda or a script's function cannot reach another process; its lines go to stdout
        if not (self.dir / DATA_FILE).exists():
            self._dataset()  # built and cached once, here; every process loads it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        while (step := self._saved_step()) < end:
            stop = min(step + (self.steps_per_process or end), end)
            child = Trainer(self.recipe, self.dir, threads=self.threads, workers=self.workers, log=self.log,
                            progress=self.progress, steps_per_process=None)  # fmt: skip
            job = pickle.dumps((child, stop))
            # a fresh interpreter, not multiprocessing's spawn: spawn re-runs the caller's script without a main guard
            code = subprocess.run([sys.executable, "-c", f"import {__name__} as t; t._train_from_stdin()"],
                                  input=job, env=env).returncode  # fmt: skip
            if code != 0:
                raise TrainError(
                    f"the training process for steps {step}-{stop} exited with code {code}; the run is saved "
                    f"at step {self._saved_step()} in {self.dir}: run again to resume"
                )
            if self._saved_step() == step:
                raise TrainError(f"the training process for steps {step}-{stop} saved no progress in {self.dir}")
        ckpt = self.dir / "checkpoint"
        return ckpt if end == self.recipe.total_steps and (ckpt / MANIFEST_FILE).exists() else None

    def _load_state(self, model: DSATransformer) -> tuple[RunState, dict[str, Any] | None]:
        path = self.dir / STATE_FILE
        if not path.exists():
            return RunState(), None
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["model"])
        return RunState(saved["step"], saved["elapsed"], list(saved["history"])), saved["opt"]

    # -- the loop -----------------------------------------------------------------------------------------------

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to the end of the recipe (or resume) and write the checkpoint; returns the checkpoint directory.

        `stop_after`: save the state and return None once this many global steps are done (what an interruption
        leaves behind; used by the resume test)."""
        if self.threads:
            torch.set_num_threads(self.threads)
        self._check_recipe()
        recipe = self.recipe
        self.log(f"precision: {'bfloat16 autocast' if recipe.bf16 else 'float32'}, "
                 f"{'compiled (the first step of each stage compiles, about a minute)' if recipe.compile else 'eager'}"
                 f" ({cpu_name()})")
        if recipe.bf16 and not native_bf16():
            self.log("warning: this CPU has no native bfloat16 (no AVX512-BF16/AMX), so bf16 autocast is emulated and "
                     "steps are about 20x slower than float32; train with bf16=None (decided by the CPU) or False")
        end = recipe.total_steps if stop_after is None else min(stop_after, recipe.total_steps)
        if self.steps_per_process and end - self._saved_step() > self.steps_per_process:
            return self._run_in_processes(end)
        tokenizer, examples, data_minutes = self._dataset()
        torch.manual_seed(recipe.seed)
        model = initial_model(recipe, tokenizer)
        state, opt_state = self._load_state(model)
        if state.step:
            self.log(f"resuming at step {state.step}/{recipe.total_steps} ({state.elapsed / 60:.1f} min trained)")
            # steps logged after the last save were lost with the process and are trained again: drop them
            (self.dir / LOG_FILE).write_text("".join(json.dumps(e) + "\n" for e in state.history))
        batches = make_batches(examples, recipe.batch_tokens, recipe.length_multiple)
        schedule = batch_schedule(len(batches), recipe.seed)
        for _ in range(state.step):  # the batches already consumed
            next(schedule)
        pad_id = tokenizer.eos_id
        opt: torch.optim.Optimizer | None = None
        opt_stage = None
        bar = _Bar(recipe.total_steps, state.step) if self.progress else None
        last_save = state.step
        try:
            while (cur := stage_at(recipe, state.step))[0] != "done":
                if stop_after is not None and state.step >= stop_after:
                    if state.step > last_save:
                        self._save_state(model, opt, state)
                    return None
                stage, i, n = cur
                if stage != opt_stage:
                    opt = make_optimizer(model, recipe, stage)
                    if opt_state is not None and i > 0:
                        opt.load_state_dict(opt_state)
                    opt_state, opt_stage = None, stage
                assert opt is not None
                batch = [examples[j] for j in batches[next(schedule)]]
                ids, target, real = collate(batch, pad_id, recipe.context_weight, recipe.length_multiple)
                t0 = time.monotonic()
                losses = train_step(model, opt, recipe, stage, lr_at(recipe, stage, i, n) / _peak(recipe, stage),
                                    ids, target, real)  # fmt: skip
                state.elapsed += time.monotonic() - t0
                state.step += 1
                entry = {"step": state.step, "stage": stage, **{k: round(v, 5) for k, v in losses.items()},
                         "tokens": int(real.sum()), "minutes": round(state.elapsed / 60, 3)}  # fmt: skip
                state.history.append(entry)
                with (self.dir / LOG_FILE).open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                if bar is not None:
                    bar.update(state.step, entry, minutes_left(recipe, state.history))
                elif state.step % 10 == 0 or state.step == recipe.total_steps:
                    self.log(_fmt(entry, recipe.total_steps, minutes_left(recipe, state.history)))
                if state.step - last_save >= recipe.save_every or stage_at(recipe, state.step)[0] != stage:
                    self._save_state(model, opt, state)
                    save_local_checkpoint(self.dir / "latest", model, tokenizer)  # for looking in on a long run
                    last_save = state.step
        finally:
            if bar is not None:
                bar.close()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(True)
        ckpt = save_local_checkpoint(self.dir / "checkpoint", model, tokenizer)
        write_manifest(ckpt, recipe, state, examples, model.cfg, data_minutes)
        self.log(f"done: {state.step} steps in {state.elapsed / 60:.1f} min; checkpoint at {ckpt}")
        return ckpt


def spelling_table(tokenizer: ChatTokenizer) -> torch.Tensor:
    """The copy head's spelling variants of the tokenizer's tokens (special tokens have none)."""
    return spelling_variants(
        [b"" if tokenizer.is_special(i) else tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
    )


def _peak(recipe: Recipe, stage: str) -> float:
    return {"dense": recipe.lr, "indexer": recipe.indexer_lr, "sparse": recipe.sparse_lr}[stage]


def _fmt(entry: dict[str, Any], total: int, left: float | None) -> str:
    focus = f" focus {entry['focus']:.4f}" if "focus" in entry else ""
    return (f"step {entry['step']}/{total} [{entry['stage']}] lm {entry['lm']:.4f} index {entry['index']:.4f}{focus} "
            f"grad {entry['grad_norm']:.2f} {entry['minutes']:.1f} min{_left(left)}")  # fmt: skip


def _left(minutes: float | None) -> str:
    if minutes is None or minutes <= 0:
        return ""
    return f", about {minutes:.0f} min left" if minutes >= 1 else ", under a minute left"


class _Bar:
    """A rich progress bar showing the stage and the latest losses."""

    def __init__(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[losses]}"), TimeElapsedColumn(),
                           TextColumn("{task.fields[left]}"))  # fmt: skip
        self._p.start()
        self._task = self._p.add_task("train", total=total, completed=done, stage="", losses="", left="")

    def update(self, step: int, entry: dict[str, Any], left: float | None) -> None:
        losses = f"lm {entry['lm']:.4f} index {entry['index']:.4f}"
        self._p.update(self._task, completed=step, stage=entry["stage"], losses=losses, left=_left(left)[2:])

    def close(self) -> None:
        self._p.stop()


def write_manifest(
    ckpt: Path, recipe: Recipe, state: RunState, examples: Sequence[Example], config: DSAConfig, data_minutes: float
) -> Path:
    """manifest.json beside the weights: the recipe, the training data's seeds and size, the measured time. The
    quality figures are added by benchmarks/bench_agent_quality.py (`update_manifest`), never by hand."""
    path = ckpt / MANIFEST_FILE
    old = json.loads(path.read_text()) if path.exists() else {}
    manifest = {
        "model_id": "local-dsa",
        "recipe": recipe.to_dict(),
        "config": config.to_dict(),
        "parameters": sum(math.prod(t.shape) for t in DSATransformer(config).state_dict().values()),
        "training_data": {
            "generator_seed": recipe.data_seed, "n_tasks": recipe.n_tasks, "n_trajectories": len(examples),
            "difficulties": list(recipe.difficulties), "families": sorted({e.family for e in examples}),
            "tokens": sum(len(e.ids) for e in examples), "target_tokens": sum(sum(e.target) for e in examples),
        },
        "training": {
            "steps": state.step, "step_minutes": round(state.elapsed / 60, 2), "data_minutes": round(data_minutes, 2),
            "train_minutes": round(state.elapsed / 60 + data_minutes, 2), "torch_threads": torch.get_num_threads(),
            "cpu": cpu_name(),
            **recipe_cost(recipe, state.history, data_minutes),
            "final_losses": {s: _last(state.history, s) for s in STAGES},
        },
        "continued_from": _lineage(recipe.init),
        "agent": AGENT_SETTINGS,
        "eval": old.get("eval"),
    }  # fmt: skip
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def _lineage(init: str | None) -> dict[str, Any] | None:
    """What a continued model was continued from: the parent checkpoint's recipe, data and training (its own
    lineage included), so a fine-tuned manifest still names every seed and minute behind its weights."""
    if not init:
        return None
    path = Path(init) / MANIFEST_FILE
    parent = json.loads(path.read_text()) if path.exists() else {}
    keep = ("recipe", "training_data", "training", "continued_from")
    return {"checkpoint": str(init), **{k: parent[k] for k in keep if parent.get(k) is not None}}


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


@dataclass
class RecipeTiming:
    """What `time_recipe` measured: the median seconds per step of each stage, the projected data minutes, and the
    whole recipe's projected minutes on this machine."""

    median_step_seconds: dict[str, float]
    data_minutes: float
    stage_minutes: dict[str, float]

    @property
    def minutes(self) -> float:
        return self.data_minutes + sum(self.stage_minutes.values())


def time_recipe(
    recipe: Recipe, sample_tasks: int = 600, steps: int = 12, *, bf16: bool | None = None,
    compile: bool | None = None, stages: Sequence[str] = STAGES,
) -> RecipeTiming:  # fmt: skip
    """Project what `recipe` costs on this machine without running it: real steps of every stage on real batches
    of a sample of its own data (an even spread over the length-sorted batches, so the steps see the length mix),
    timed after one untimed warm-up step, medians times the stages' steps; the data stage scaled linearly from the
    sample (an overestimate: the tokenizer's training does not grow with the task count). `bf16` and `compile`
    override the recipe's (the comparisons of benchmarks/bench_train_speed.py); the warm-up step of a compiled stage
    compiles it, so its steps are timed as a long run sees them. `stages` times only those (the others are missing
    from the result, and `minutes` is then not the recipe's)."""
    recipe = dataclasses.replace(
        recipe, bf16=recipe.bf16 if bf16 is None else bf16, compile=recipe.compile if compile is None else compile
    ).resolved()
    t0 = time.monotonic()
    tokenizer, examples = build_dataset(dataclasses.replace(recipe, n_tasks=sample_tasks), log=lambda _s: None)
    data_minutes = (time.monotonic() - t0) / 60 * recipe.n_tasks / sample_tasks
    model = initial_model(recipe, tokenizer)
    groups = make_batches(examples, recipe.batch_tokens, recipe.length_multiple)
    picked = [groups[i] for i in range(0, len(groups), max(1, len(groups) // steps))][: steps + 1]
    batches = [collate([examples[j] for j in g], tokenizer.eos_id, recipe.context_weight, recipe.length_multiple)
               for g in picked]  # fmt: skip
    median: dict[str, float] = {}
    timed = [(stage, n) for stage, n in recipe.stage_steps() if stage in stages]
    for stage, _n in timed:
        opt = make_optimizer(model, recipe, stage)
        times = []
        for i in range(steps + 1):
            start = time.perf_counter()
            train_step(model, opt, recipe, stage, 1.0, *batches[i % len(batches)])
            if i:
                times.append(time.perf_counter() - start)
        median[stage] = statistics.median(times)
    stage_minutes = {stage: n * median[stage] / 60 for stage, n in timed}
    return RecipeTiming(median, data_minutes, stage_minutes)


def recipe_cost(recipe: Recipe, history: Sequence[dict[str, Any]], data_minutes: float) -> dict[str, Any]:
    """What the recipe costs on this machine, robust to whatever else ran beside it: the median seconds per step of
    each stage (from the run's own step times) times the stage's steps, plus the data time.

    Why beside `train_minutes`: that one is the run's wall time, and it counts every slowdown the machine had (other
    jobs, a resumed run's earlier code). Medians ignore transient spikes but not a slow recipe: most steps of a stage
    would have to be disturbed to move them."""
    median = step_medians(history)
    minutes = data_minutes + sum(n * median.get(stage, 0.0) for stage, n in recipe.stage_steps()) / 60
    return {"median_step_seconds": {k: round(v, 3) for k, v in median.items()},
            "recipe_minutes_at_median": round(minutes, 2)}  # fmt: skip


def step_times(history: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds of each logged step, by stage (`minutes` in a run's log is the running training time)."""
    times: dict[str, list[float]] = {}
    prev = 0.0
    for entry in history:
        times.setdefault(entry["stage"], []).append(60 * (entry["minutes"] - prev))
        prev = entry["minutes"]
    return times


def step_medians(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per step of each stage in a run's log."""
    return {stage: statistics.median(t) for stage, t in step_times(history).items()}


STEP_COST = {"dense": 1.0, "indexer": 2.6, "sparse": 4.5}
"""A stage's step time relative to a dense step, for estimating stages a run has not reached yet: measured by
benchmarks/bench_train_speed.py at 2.5x/3.9x (bf16 on AMX) and 2.7x/5.0x (float32 on AVX2); the indexer and sparse
steps materialise [batch, seq, seq] scores that the dense step's fused kernel never does."""


def minutes_left(recipe: Recipe, history: Sequence[dict[str, Any]]) -> float | None:
    """Estimated training minutes to the end of the recipe: the steps left in each stage times that stage's median
    step so far, or, for a stage not reached yet, the latest stage's median scaled by `STEP_COST`. None before the
    first step. What the progress bar and the log lines show as the time left."""
    if not history:
        return None
    times = step_times(history)
    median = {stage: statistics.median(t) for stage, t in times.items()}
    latest = history[-1]["stage"]
    per_dense = median[latest] / STEP_COST[latest]
    seconds = sum(max(n - len(times.get(stage, ())), 0) * median.get(stage, per_dense * STEP_COST[stage])
                  for stage, n in recipe.stage_steps())  # fmt: skip
    return seconds / 60


def _last(history: Sequence[dict[str, Any]], stage: str) -> dict[str, float | None] | None:
    rows = [h for h in history if h["stage"] == stage][-10:]
    if not rows:
        return None
    out: dict[str, float | None] = {}
    keys = ("lm", "index", "focus") if any("focus" in r for r in rows) else ("lm", "index")  # focus: only with it
    for k in keys:
        values = [r[k] for r in rows if k in r and not math.isnan(r[k])]  # the indexer stage has no LM loss
        out[k] = round(sum(values) / len(values), 4) if values else None
    return out


AGENT_SETTINGS: dict[str, Any] = {"system_prompt": SYSTEM_PROMPT, "thinking": True, "max_turns": 12, "max_tokens": 320,
                                  "beams": 4}  # fmt: skip
"""How agents should drive the shipped model: the prompt and mode it was trained with, limits that stop a derailed
run early (a d1-3 reference needs at most 7 turns and about 150 tokens per turn), and the beam width of each turn
(beam.py: 4 beams solved more held-out tasks than greedy decoding, and 8 no more than 4; README)."""


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m model_backend.local.train RUN_DIR [options]`: the same command as `agentkit local train`."""
    from agentkit.cli import main as cli_main

    return cli_main(["local", "train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())


# --------------------------------------------------------------------------------------------------------------------
# Using the trained model


@torch.no_grad()
def layer_topk_recalls(
    model: DSATransformer, examples: Sequence[Example], *, min_context: int | None = None
) -> list[tuple[float, float]]:
    """Per layer, (the indexer's top-k recall, the oracle's): shares of the dense attention mass that top-k keeps,
    on whole trajectories.

    For every query that sees more than k tokens (below that, sparse attention is dense), the main attention
    probabilities of the dense model, summed over heads and normalised, are added up over the k tokens the indexer
    selects (first figure) and over the k tokens of largest mass, the most any selection can keep (second); each
    is the mean over those queries. 1.0 means sparse attention drops nothing the dense attention looked at; the
    ratio says how good the indexer is, the oracle alone how far a target recall is reachable at this k with these
    attention weights. Per layer, because the layers differ by far: a first layer that averages its context keeps
    half its mass in 128 tokens where the later ones keep 95-99% (docs/dsa.md).
    """
    k = model.cfg.index_topk
    start = k if min_context is None else min_context
    n_layers = len(model.blocks)
    total, best, count = [0.0] * n_layers, [0.0] * n_layers, 0
    for e in examples:
        if len(e.ids) <= start:
            continue
        ids = torch.tensor([e.ids])
        seqlen = ids.shape[1]
        cos, sin = model.rope_cos[None, :seqlen], model.rope_sin[None, :seqlen]
        causal = torch.ones(seqlen, seqlen, dtype=torch.bool).tril().unsqueeze(0)
        h = model.embed(ids)
        for layer, block in enumerate(model.blocks):
            attn = block.attn
            x = block.attn_norm(h)
            q_nope, q_pe, latent, qr = attn._project(x, cos, sin)
            kk, _ = attn._expand(latent)
            q = torch.cat((q_nope, q_pe), dim=-1)
            scores = torch.einsum("bshd,bthd->bhst", q, kk) * attn.softmax_scale
            mass = scores.masked_fill(~causal.unsqueeze(1), float("-inf")).softmax(-1).sum(1) / attn.n_heads
            q_idx, w_idx = attn.indexer.queries(x, qr, cos, sin)
            index = _index_scores(q_idx, w_idx, attn.indexer.keys(x, cos, sin)).masked_fill(~causal, float("-inf"))
            sel, valid = select_topk(index, k)
            kept = (mass.gather(-1, sel) * valid).sum(-1)[0, start:]  # queries that see more than k tokens
            total[layer] += float(kept.sum())
            best[layer] += float(mass.topk(k, dim=-1).values.sum(-1)[0, start:].sum())
            h = h + _dense_attention(attn, x, cos, sin)
            h = h + block.ffn(block.ffn_norm(h))
        count += seqlen - start
    return [(t / count, b / count) if count else (1.0, 1.0) for t, b in zip(total, best, strict=True)]


def topk_recalls(
    model: DSATransformer, examples: Sequence[Example], *, min_context: int | None = None
) -> tuple[float, float]:
    """(the indexer's top-k recall, the oracle's) over all layers: the mean of `layer_topk_recalls` (every layer
    counts the same queries)."""
    return mean_recalls(layer_topk_recalls(model, examples, min_context=min_context))


def mean_recalls(layers: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(indexer, oracle) recall over all layers from `layer_topk_recalls`' per-layer figures."""
    return (sum(r for r, _ in layers) / len(layers), sum(o for _, o in layers) / len(layers))


def generated_turns(target: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of each run of generated tokens (one assistant turn each)."""
    turns: list[tuple[int, int]] = []
    start = None
    for i, t in enumerate([*target, False]):
        if t and start is None:
            start = i
        elif not t and start is not None:
            turns.append((start, i))
            start = None
    return turns


def turn_misses(
    predict: Callable[[list[int]], list[int]], examples: Sequence[Example]
) -> Iterator[tuple[Example, int, int, int | None, list[int]]]:
    """Each generated turn of the reference trajectories, teacher-forced: (example, start, end, the first position
    in [start, end) whose token greedy decoding gets wrong or None, the predictions). `predict(ids)` returns the
    argmax next token at every position; it runs once per example."""
    for e in examples:
        pred = predict(e.ids)
        for start, end in generated_turns(e.target):
            miss = next((i for i in range(start, end) if pred[i - 1] != e.ids[i]), None)
            yield e, start, end, miss, pred


def turn_exact_match(predict: Callable[[list[int]], list[int]], examples: Sequence[Example]) -> float:
    """Share of the generated turns of reference trajectories that greedy decoding reproduces token for token when
    it is given the reference conversation up to that turn (teacher forcing). Finer-grained than pass@1: a task
    needs every one of its turns right, so this figure moves first when the model improves, and its misses show
    which token went wrong (`diagnose.py`)."""
    misses = [miss for *_, miss, _ in turn_misses(predict, examples)]
    return sum(m is None for m in misses) / len(misses) if misses else float("nan")


def greedy_predictor(model: DSATransformer, mode: str = "sparse") -> Callable[[list[int]], list[int]]:
    """`predict` for `turn_exact_match`: one forward pass of the model in `mode`, argmax at every position."""

    @torch.no_grad()
    def predict(ids: list[int]) -> list[int]:
        return model(torch.tensor([ids]), mode=mode)[0].argmax(-1).tolist()

    return predict


def encode_records(tokenizer: ChatTokenizer, records: Sequence[Any], *, thinking: bool = True) -> list[Example]:
    """Held-out tasks' reference trajectories, encoded the way training encodes them (for `topk_recalls`)."""
    from envs.trajectories import render

    out = []
    for record in records:
        ids, target = encode_conversation(tokenizer, conversation(render(record)), agent_tool_specs(record),
                                          thinking=thinking)  # fmt: skip
        out.append(Example(record.task.task_id, record.task.family, record.task.difficulty, ids, target))
    return out


def shipped_backend(checkpoint: str | Path | None = None, **overrides: Any) -> Any:
    """A deterministic (temperature 0) `LocalDSABackend` over the shipped checkpoint (or `checkpoint`); thinking,
    `max_tokens` and the beam width come from the checkpoint's manifest, the settings it was trained and measured
    with. Keyword overrides go to `LocalDSABackend`."""
    from .backend import SHIPPED_CHECKPOINT, LocalDSABackend

    return LocalDSABackend(checkpoint or SHIPPED_CHECKPOINT, **{"temperature": 0.0, **overrides})


def agent_factory(backend: Any, **overrides: Any) -> Any:
    """The eval harness's agent factory with the agent settings the model was trained for (system prompt, thinking,
    max_turns); keyword overrides go to `envs.eval.default_agent_factory`."""
    from envs.eval import default_agent_factory

    kwargs: dict[str, Any] = {"thinking": AGENT_SETTINGS["thinking"], "max_turns": AGENT_SETTINGS["max_turns"],
                              "system_prompt": AGENT_SETTINGS["system_prompt"], **overrides}  # fmt: skip
    return default_agent_factory(backend, **kwargs)
