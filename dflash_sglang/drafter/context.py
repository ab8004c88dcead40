"""The drafter's context K/V for a batch of requests: z-lab's DynamicCache, ragged and padded.

Request i's context is `keys[layer][i, :lens[i]]` at `positions[i, :lens[i]]`; slots past `lens[i]`
are padding that the attention mask hides. A step appends the newly verified tokens' K/V, and
`crop` rolls back, as z-lab's `crop` does after each draft.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ContextKV:
    keys: list[torch.Tensor]  # per layer [bs, cap, kv_heads, head_dim]
    values: list[torch.Tensor]  # per layer [bs, cap, kv_heads, head_dim]
    positions: torch.Tensor  # [bs, cap] absolute positions (int64)
    lens: torch.Tensor  # [bs] valid context tokens per request (int64)

    @classmethod
    def empty(
        cls,
        num_layers: int,
        batch_size: int,
        kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> ContextKV:
        def kv() -> torch.Tensor:
            return torch.zeros(batch_size, 0, kv_heads, head_dim, dtype=dtype, device=device)

        return cls(
            keys=[kv() for _ in range(num_layers)],
            values=[kv() for _ in range(num_layers)],
            positions=torch.zeros(batch_size, 0, dtype=torch.int64, device=device),
            lens=torch.zeros(batch_size, dtype=torch.int64, device=device),
        )

    @property
    def capacity(self) -> int:
        return self.positions.shape[1]

    def valid(self) -> torch.Tensor:
        """[bs, cap] bool: True for real context slots."""
        slots = torch.arange(self.capacity, device=self.lens.device)  # [cap]
        return slots[None, :] < self.lens[:, None]

    def append(
        self,
        layer_kv: list[tuple[torch.Tensor, torch.Tensor]],  # per layer (k, v), each [bs, n, kv_heads, head_dim]
        positions: torch.Tensor,  # [bs, n]
        num_new: torch.Tensor,  # [bs] how many of the n are real for each request
    ) -> None:
        assert len(layer_kv) == len(self.keys), (len(layer_kv), len(self.keys))
        bs, n = positions.shape
        assert all(k.shape[:2] == (bs, n) == v.shape[:2] for k, v in layer_kv), (positions.shape, layer_kv[0][0].shape)
        self._grow(int((self.lens + num_new).max()))
        offsets = torch.arange(n, device=positions.device)  # [n]
        real = offsets[None, :] < num_new[:, None]  # [bs, n]
        rows = torch.arange(bs, device=positions.device)[:, None].expand(bs, n)[real]  # [num_tokens]
        slots = (self.lens[:, None] + offsets[None, :])[real]  # [num_tokens]
        for layer, (k, v) in enumerate(layer_kv):
            self.keys[layer][rows, slots] = k[real].to(self.keys[layer].dtype)
            self.values[layer][rows, slots] = v[real].to(self.values[layer].dtype)
        self.positions[rows, slots] = positions[real]
        self.lens = self.lens + num_new

    def crop(self, lens: torch.Tensor) -> None:
        """Keep the first `lens[i]` context tokens of each request ([bs]); the rest becomes padding."""
        assert bool((lens <= self.lens).all()), (lens, self.lens)
        self.lens = lens.to(self.lens)

    def _grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        if extra <= 0:
            return

        def pad(t: torch.Tensor) -> torch.Tensor:  # [bs, cap, ...] -> [bs, cap + extra, ...]
            return torch.cat([t, t.new_zeros(t.shape[0], extra, *t.shape[2:])], dim=1)

        self.keys = [pad(k) for k in self.keys]
        self.values = [pad(v) for v in self.values]
        self.positions = pad(self.positions)
