"""The decoding cache of the DSA transformer: MLA latents plus indexer keys, for a batch of sequences.

Per layer and per token the cache stores
  - the MLA latent: the normalised compressed kv vector (kv_lora_rank numbers) followed by the RoPE'd decoupled
    key (qk_rope_head_dim numbers), one row shared by all attention heads (the MLA memory saving), and
  - the lightning indexer's key (index_head_dim numbers), optionally in bfloat16 (`index_dtype`): the keys only
    rank tokens, DeepSeek keeps them in FP8, and at long context reading them is most of a sparse step's
    attention work, so half the bytes is most of a 2x on the indexer.

Per token (not per layer), for a model with a copy head (`copy_head.py`), it also stores the token id and the copy
head's pointer key (copy_dim numbers).

Each of the `batch_size` rows holds an independent sequence with its own length, so sequences of different
lengths decode together: new tokens of row b go to positions lengths[b], lengths[b] + 1, ... Entries at or past
a row's length are stale and are never read unmasked (attention masks every key past the query's position).
A row is reused for a new sequence by resetting its length to zero.
"""

from __future__ import annotations

import torch

from .errors import CacheCapacityError


class DSACache:
    """Latent and indexer-key cache for `batch_size` sequences of up to `capacity` tokens each."""

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        capacity: int,
        latent_dim: int,
        index_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        index_dtype: torch.dtype | None = None,
        copy_dim: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        self.capacity = capacity
        # zeros, not empty: masked entries are multiplied by 0 and must never be nan
        self.latent = [
            torch.zeros(batch_size, capacity, latent_dim, dtype=dtype, device=device) for _ in range(n_layers)
        ]
        self.index_keys = [
            torch.zeros(batch_size, capacity, index_dim, dtype=index_dtype or dtype, device=device)
            for _ in range(n_layers)
        ]
        self.lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
        # token ids are only read by a copy head: without one, nothing is stored
        self.tokens = torch.zeros(batch_size, capacity if copy_dim else 0, dtype=torch.long, device=device)
        self.copy_keys = torch.zeros(batch_size, capacity, copy_dim, dtype=dtype, device=device)

    @property
    def batch_size(self) -> int:
        return self.lengths.shape[0]

    def bytes_per_token(self) -> dict[str, int]:
        """Bytes one token of one sequence occupies, over all layers: {'latent', 'index', 'total'}."""
        latent = sum(t.shape[-1] * t.element_size() for t in self.latent)
        index = sum(t.shape[-1] * t.element_size() for t in self.index_keys)
        copy = self.copy_keys.shape[-1] * self.copy_keys.element_size()
        if copy:
            copy += self.tokens.element_size()
        return {"latent": latent, "index": index, "copy": copy, "total": latent + index + copy}

    def reset(self, rows: torch.Tensor | list[int] | None = None) -> None:
        """Forget the sequences in `rows` (all rows when None) so the rows can take new sequences."""
        if rows is None:
            self.lengths.zero_()
        else:
            self.lengths[torch.as_tensor(rows, dtype=torch.long)] = 0

    # -- used by the model --------------------------------------------------------------------------------------

    def row_index(self, rows: torch.Tensor | list[int] | None, bsz: int) -> torch.Tensor:
        """The cache rows that the bsz sequences of a forward call live in, checked."""
        if rows is None:
            if bsz != self.batch_size:
                raise ValueError(
                    f"the batch has {bsz} sequences but the cache has {self.batch_size} rows; "
                    "pass rows=... to say which cache rows the batch uses"
                )
            return torch.arange(bsz, device=self.lengths.device)
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.lengths.device)
        if rows.shape != (bsz,):
            raise ValueError(
                f"rows must list one cache row per sequence ({bsz}), got shape {tuple(rows.shape)}"
            )
        if bool(((rows < 0) | (rows >= self.batch_size)).any()) or rows.unique().numel() != bsz:
            raise ValueError(
                f"rows must be distinct cache rows in [0, {self.batch_size}), got {rows.tolist()}"
            )
        return rows

    def check_room(self, rows: torch.Tensor, n_tokens: int) -> None:
        longest = int(self.lengths[rows].max()) + n_tokens
        if longest > self.capacity:
            raise CacheCapacityError(
                f"a sequence would reach {longest} tokens but the cache holds {self.capacity} per sequence; "
                "allocate a larger cache (model.new_cache(batch_size, capacity=...)) or shorten the input"
            )

    def write(
        self,
        layer: int,
        rows: torch.Tensor,
        positions: torch.Tensor,
        latent: torch.Tensor,
        index_keys: torch.Tensor,
    ) -> None:
        """Store new tokens: positions [B, S]; latent [B, S, latent_dim]; index_keys [B, S, index_dim]."""
        where = (rows.unsqueeze(1).expand_as(positions), positions)
        self.latent[layer].index_put_(where, latent.to(self.latent[layer].dtype))
        self.index_keys[layer].index_put_(where, index_keys.to(self.index_keys[layer].dtype))

    def write_tokens(
        self, rows: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor, copy_keys: torch.Tensor
    ) -> None:
        """Store new tokens' ids [B, S] and their copy-head pointer keys [B, S, copy_dim]."""
        where = (rows.unsqueeze(1).expand_as(positions), positions)
        self.tokens.index_put_(where, tokens)
        self.copy_keys.index_put_(where, copy_keys.to(self.copy_keys.dtype))

    def read_tokens(self, rows: torch.Tensor, upto: int) -> torch.Tensor:
        """Token ids of positions [0, upto) of the given rows: [B, upto]."""
        return self._rows_upto(self.tokens, rows, upto)

    def read_copy_keys(self, rows: torch.Tensor, upto: int) -> torch.Tensor:
        """Copy-head pointer keys of positions [0, upto): [B, upto, copy_dim]."""
        return self._rows_upto(self.copy_keys, rows, upto)

    def _rows_upto(self, table: torch.Tensor, rows: torch.Tensor, upto: int) -> torch.Tensor:
        first = int(rows[0])
        if bool((rows == torch.arange(first, first + rows.shape[0], device=rows.device)).all()):
            return table[first : first + rows.shape[0], :upto]  # consecutive rows: a view, no copy
        return table[rows, :upto]

    def read_latent(self, layer: int, rows: torch.Tensor, upto: int) -> torch.Tensor:
        """Latents of positions [0, upto) of the given rows: [B, upto, latent_dim]."""
        return self._rows_upto(self.latent[layer], rows, upto)

    def read_index_keys(self, layer: int, rows: torch.Tensor, upto: int) -> torch.Tensor:
        """Indexer keys of positions [0, upto) of the given rows: [B, upto, index_dim]."""
        return self._rows_upto(self.index_keys[layer], rows, upto)

    def gather_latent(self, layer: int, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Only the selected entries: positions [B, S, k] -> latents [B, S, k, latent_dim].

        This is where sparse attention saves its work: k rows are copied per query, never the whole cache.
        """
        table = self.latent[layer]
        flat = table.view(-1, table.shape[-1])
        index = positions + (rows * self.capacity).view(-1, 1, 1)
        return flat.index_select(0, index.flatten()).view(*positions.shape, table.shape[-1])

    def advance(self, rows: torch.Tensor, n_new: torch.Tensor) -> None:
        self.lengths[rows] += n_new

    def copy_row(self, src: int, dst: int) -> None:
        """Make row `dst` hold the sequence of row `src` (its valid entries and length), for a beam that forks: the
        child continues from its parent's cache instead of prefilling the prompt and its tokens again."""
        n = int(self.lengths[src])
        for table in (*self.latent, *self.index_keys, self.copy_keys):
            table[dst, :n] = table[src, :n]
        if self.tokens.shape[1]:
            self.tokens[dst, :n] = self.tokens[src, :n]
        self.lengths[dst] = n
