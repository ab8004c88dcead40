"""dflash-sglang: DFlash block-diffusion speculative decoding for a stock SGLang release.

Glossary (the paper's nouns; the code uses exactly these):
- target: the model being served; its greedy/sampled output is what the user gets.
- drafter: a few Qwen3-style layers at the target's hidden size that draft a whole block at once.
- block: `blk` tokens drafted in one parallel pass: `[anchor, MASK x (blk-1)]` in, `blk-1` drafts out.
- anchor: the block's first token, the last verified token (the previous step's bonus token).
- mask token: the placeholder id (`<|MASK|>`) filling the rest of the block.
- target features: hidden states captured from `target_layer_ids` of the target, concatenated,
  then `fc` and `hidden_norm`; they become the drafter's context keys and values (KV injection).
- acceptance length: drafts accepted in a step plus the bonus token (1..blk); tau is its mean.
- bonus token: the target's own token at the first rejected position (or after the last draft).

Dimension names used in shape comments:
- bs: requests in the batch;  blk: tokens per block, anchor included;  ctx: context tokens;
- hidden: model width;  n_feat: number of target layers captured;  vocab: vocabulary size;
- num_tokens: ragged tokens flattened across requests.
"""

__version__ = "0.1.0"
