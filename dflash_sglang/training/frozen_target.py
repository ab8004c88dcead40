"""The frozen target during drafter training: greedy continuations, target features, embedding and head.

Any Hugging Face causal LM with `output_hidden_states` works (Qwen3 and Llama were the goal). Its
weights, `embed_tokens` and `lm_head` included, never receive gradients. Target features are taken
exactly as z-lab's `extract_context_feature` takes them: `hidden_states[layer_id + 1]` (entry 0 is
the embedding output), concatenated over `target_layer_ids`.
"""

from __future__ import annotations

from pathlib import Path

import torch


class FrozenTarget:
    def __init__(self, model) -> None:
        self.model = model.eval().requires_grad_(False)
        self.config = model.config.get_text_config()

    @classmethod
    def from_dir(cls, target_dir: str | Path, dtype: torch.dtype = torch.float32) -> FrozenTarget:
        from transformers import AutoModelForCausalLM

        return cls(AutoModelForCausalLM.from_pretrained(target_dir, dtype=dtype))

    @property
    def embed_weight(self) -> torch.Tensor:  # [vocab, hidden]
        return self.model.get_input_embeddings().weight

    @property
    def lm_head_weight(self) -> torch.Tensor:  # [vocab, hidden]
        return self.model.get_output_embeddings().weight

    @torch.no_grad()
    def features(self, ids: torch.Tensor, layer_ids: list[int], chunk: int = 16) -> torch.Tensor:
        """ids [n, seq] -> [n, seq, n_feat * hidden] fp32, `chunk` sequences per forward."""
        out = []
        for rows in ids.split(chunk):
            hidden_states = self.model(input_ids=rows, output_hidden_states=True).hidden_states
            out.append(torch.cat([hidden_states[i + 1] for i in layer_ids], dim=-1).float())
        return torch.cat(out)

    @torch.no_grad()
    def greedy_continue(self, prompts: torch.Tensor, num_new: int) -> torch.Tensor:
        """prompts [n, prompt_len] (equal lengths: no padding) -> [n, prompt_len + num_new], greedy,
        without stopping at an end-of-text token (the drafter must learn what follows one too)."""
        out = self.model(input_ids=prompts, use_cache=True)
        cache = out.past_key_values
        tokens = [out.logits[:, -1].argmax(-1)]  # each [n]
        for _ in range(num_new - 1):
            out = self.model(input_ids=tokens[-1][:, None], past_key_values=cache, use_cache=True)
            tokens.append(out.logits[:, -1].argmax(-1))
        return torch.cat([prompts, torch.stack(tokens, dim=1)], dim=1)
