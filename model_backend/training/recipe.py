"""What determines a training run: the `Recipe` (data, model shape, optimisation, precision), the seconds-long
`TINY` recipe of the tests, and the machine-dependent choices a recipe may leave open.

Two runs of equal recipes (and thread counts) are identical: the data, the tokenizer, the batches and their order
are pure functions of it (`data.py`), and `loop.py` refuses to resume a run directory with another recipe.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from dataclasses import dataclass
from typing import Any

from agentkit.backends.local.config import DSAConfig, field_check
from agentkit.backends.local.cpu import native_bf16
from agentkit.errors import AgentkitError

STAGES = ("dense", "indexer", "sparse")


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
    wording: str = "train"
    """The space the training instructions are phrased from (`agentkit.envs.wording`): "train" (many phrasings,
    never the held-out ones the benchmark measures with), or "template" (each family's own sentence only)."""
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
    64 leaves a few dozen widths for a little more padding, and the steps get faster. 1: no rounding."""
    context_weight: float = 0.3
    """Loss weight of the tokens the model does not generate but that follow the system block (the user's
    instruction and the tool results), relative to 1 for the generated ones. Those tokens cost nothing extra to
    predict (the forward pass computes them anyway) and many of them are copies of values seen earlier in the
    conversation (a result echoes the arguments of its call), so they teach the copying the agent needs with
    several times more examples per step. 0: generated tokens only."""
    dense_steps: int = 4800
    indexer_steps: int = 100
    sparse_steps: int = 80
    focus_weight: float = 1.0
    """Weight of the focus loss in sparse training (dsa.attention_focus_loss: minus the log of the share of the
    dense attention mass on the indexer's top-k, averaged over layers), beside the LM loss of weight 1. The DeepSeek
    recipe has no such term; without it the dense attention of the trained weights keeps the spread the dense stage
    gave it, and top-k recall of its mass stays near what the best k tokens can keep, however good the indexer.
    0: the plain DeepSeek recipe; 1 (the default) kept the shipped models' dense and sparse pass rates within a
    point of each other and their top-k recall above 0.95."""
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
    natively (AVX512-BF16 or AMX), same losses to within noise; on CPUs without (AVX2 only) PyTorch emulates it and
    a step is many times slower than in float32. None: decide by the CPU (`native_bf16`), once per run directory
    (the decision is stored with the run, so a resumed run keeps its precision)."""
    compile: bool | None = None
    """Run the forward and backward passes through `torch.compile` (TorchInductor, which writes and builds C++ for
    the CPU): it fuses the elementwise work (norms, RoPE, SwiGLU, the autocast casts) that dominates an eager step
    of a model this small, so a step is faster (benchmarks/bench_train_speed.py measures by how much on a machine),
    after a compilation per stage. The numbers differ from eager ones by float rounding only. None: on where a C++
    compiler is on the PATH, decided once per run directory like `bf16`."""

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
        if self.wording not in ("train", "template"):
            raise TrainError(f"wording must be 'train' or 'template' (the held-out phrasings are for evaluation "
                             f"only), got {self.wording!r}")
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


@functools.cache
def can_compile() -> bool:
    """Whether `torch.compile` can build kernels here: TorchInductor's CPU backend needs a C++ compiler. Cached:
    `train_step` resolves its recipe every step, and this searches the PATH."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)
