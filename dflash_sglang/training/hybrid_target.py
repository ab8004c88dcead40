"""A hybrid (Gated DeltaNet) Hugging Face target made safe for z-lab's `dflash_generate`.

`dflash_generate` verifies a whole block, then rolls the target's cache back to the committed tokens with
`cache.crop`. For attention layers that is exact, and transformers' linear-attention layers roll their conv
window back too (`activate_past_recording`), but not their recurrent state: after a partly rejected block the
state has absorbed the rejected drafts, and the next tokens drift from the target's own greedy output.

`ReplayingTarget` keeps the last call's input and a copy of every linear-attention state from before it.
When the next call starts before the end of that input (drafts were rejected), it restores the copies, cuts the
attention layers back to where that call started and re-runs the committed part, so the recurrent state is the
state after exactly the committed tokens (SGLang's builtin keeps per-step states instead; replaying is simpler
and costs one short forward per partly rejected block).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.cache_utils import LinearAttentionCacheLayerMixin


def is_hybrid(config) -> bool:
    return "linear_attention" in (getattr(config.get_text_config(), "layer_types", None) or [])


@dataclass(frozen=True)
class _LastCall:
    start: int  # position of its first token
    input_ids: torch.Tensor  # [1, n]
    states: dict[int, tuple[torch.Tensor, torch.Tensor]]  # layer -> (conv, recurrent) before the call


class ReplayingTarget(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self._last: _LastCall | None = None

    @property
    def config(self):
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def lm_head(self):
        return self.model.get_output_embeddings()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def get_output_embeddings(self):
        return self.model.get_output_embeddings()

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, past_key_values, **kwargs):
        assert input_ids.shape[0] == 1, "dflash_generate decodes one sequence"
        start = int(position_ids[0, 0])
        if self._last is not None and self._last.start < start < self._last.start + self._last.input_ids.shape[1]:
            self._replay_committed(past_key_values, start)
        self._last = _LastCall(start=start, input_ids=input_ids, states=_linear_states(past_key_values))
        return self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=past_key_values, **kwargs)

    def _replay_committed(self, cache, start: int) -> None:
        """Put the cache in the state after the committed tokens [last.start, start) of the last call."""
        last = self._last
        for idx, layer in enumerate(cache.layers):
            if isinstance(layer, LinearAttentionCacheLayerMixin):
                conv, recurrent = last.states[idx]
                layer.conv_states[0], layer.recurrent_states[0] = conv.clone(), recurrent.clone()
            else:
                layer.crop(-(start - last.start))
        committed = last.input_ids[:, : start - last.start]  # [1, start - last.start]
        positions = torch.arange(last.start, start, device=committed.device)[None]  # [1, n]
        self.model(input_ids=committed, position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1)


def _linear_states(cache) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the conv window and recurrent state of every initialised linear-attention layer."""
    states = {}
    for idx, layer in enumerate(cache.layers):
        if isinstance(layer, LinearAttentionCacheLayerMixin) and layer.is_recurrent_states_initialized[0]:
            states[idx] = (layer.conv_states[0].clone(), layer.recurrent_states[0].clone())
    return states
