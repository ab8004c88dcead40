"""`--speculative-draft-window-size W`: the drafter reads only the last W committed tokens.

Each drafter layer's block queries attend to the context K/V of the last W committed tokens plus the
block itself. What the drafter *writes* is unchanged: every committed token still gets its context K/V
(so a radix-cache hit, or a window that moves on, finds them), and the target is untouched.

How, with SGLang's machinery and the same semantics as its builtin: the draft runner gets a private,
narrow req-to-token table (the target table's rows, `table_width` columns) over the same slot ids.
Before each draft pass, row r becomes the target row's columns [start, seq_len + B): the window, then
the block's reserved slots. The draft forward runs with `seq_lens = seq_len - start`, so whatever
attention backend the drafter uses reads only that; the cost of a draft pass depends on W, not on the
context. `start = seq_len - min(seq_len, W)`, aligned down to a page: paged backends derive their page
tables from a row's columns, so a row starts on a page boundary and up to page-1 older tokens stay
visible. Rows are rebuilt from the target's table every step, so chunked prefill, radix-cache hits,
retraction and abort leave nothing to keep consistent.

A drafter layer with its own, smaller sliding window keeps it: a row is a contiguous suffix of the
context, so the distance from every block query to every context key is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

WINDOW_FLAG = "--speculative-draft-window-size"


def check_window(window: int, block_size: int | None) -> None:
    """ValueError naming the flag, expected and got, for a window no draft pass can use."""
    if window <= 0:
        raise ValueError(f"{WINDOW_FLAG}: expected a positive number of tokens, got {window}")
    if block_size is not None and window < block_size:
        raise ValueError(f"{WINDOW_FLAG}: expected at least the block size "
                         f"(--speculative-num-draft-tokens {block_size}), got {window}")


def visible_lens(seq_lens: torch.Tensor, window: int, page_size: int) -> torch.Tensor:
    """[bs] committed tokens a draft pass reads: the last `window`, widened to start on a page."""
    seq_lens = seq_lens.to(torch.int64)
    start = seq_lens - seq_lens.clamp(max=window)  # [bs]
    return seq_lens - (start - start % page_size)


@dataclass(frozen=True)
class DraftWindow:
    size: int  # W, in tokens
    block_size: int
    page_size: int = 1

    def __post_init__(self) -> None:
        check_window(self.size, self.block_size)
        assert self.page_size >= 1, self.page_size

    @property
    def table_width(self) -> int:
        """Columns of a compact row: the window, up to page-1 tokens of alignment, the block; whole pages."""
        width = self.size + self.page_size - 1 + self.block_size
        return -(-width // self.page_size) * self.page_size

    def make_pool(self, target_pool):
        """The draft runner's private req-to-token pool: the target's rows, `table_width` columns."""
        from sglang.srt.mem_cache.memory_pool import ReqToTokenPool

        rows = target_pool.req_to_token.shape[0]
        return ReqToTokenPool(size=rows - 1, max_context_len=self.table_width,  # it adds one padding row
                              device=target_pool.req_to_token.device, enable_memory_saver=False)

    def compact(
        self,
        draft_table: torch.Tensor,  # [rows, table_width] the draft runner's private table
        target_table: torch.Tensor,  # [rows, context] the target's req_to_token
        req_pool_indices: torch.Tensor,  # [bs]
        seq_lens: torch.Tensor,  # [bs] committed tokens, on the device
        seq_lens_cpu: torch.Tensor,  # [bs] the same, on the host
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rebuild the batch's compact rows; returns the draft pass's seq_lens (device, host)."""
        visible = visible_lens(seq_lens, self.size, self.page_size)  # [bs]
        start = seq_lens.to(torch.int64) - visible  # [bs]
        columns = start[:, None] + torch.arange(self.table_width, device=start.device)[None, :]  # [bs, width]
        # Columns past seq_len + B are never read; clamping keeps their gather inside the table.
        columns = columns.clamp(max=target_table.shape[1] - 1)
        rows = req_pool_indices.to(torch.int64)[:, None]  # [bs, 1]
        draft_table[rows, torch.arange(self.table_width, device=start.device)[None, :]] = (
            target_table[rows, columns].to(draft_table.dtype))  # [bs, width]: window, then the block's slots
        return visible, visible_lens(seq_lens_cpu, self.size, self.page_size)


def describe(window: DraftWindow | None) -> str:
    """For the worker's construction line."""
    if window is None:
        return "no draft window (the drafter reads the whole context)"
    return f"draft window {window.size} tokens (page {window.page_size})"


def from_server_args(block_size: int) -> DraftWindow | None:
    """The server's window (SGLang has validated and resolved the flag), or None without one."""
    from sglang.srt.runtime_context import get_schedule, get_spec

    size = get_spec().speculative_draft_window_size
    if size is None:
        return None
    return DraftWindow(size=int(size), block_size=block_size, page_size=int(get_schedule().page_size or 1))
