"""Build each request's draft tree from the drafter's block pass (DDTree, arXiv 2604.12989).

The drafter's single pass gives a distribution at every block position d = 1..blk-1, each one
independent of the tokens chosen before it. A depth-d node takes its token from position d's
distribution, and its score is the sum of its path's log-probs. The tree keeps the `budget - 1`
best-scoring nodes plus the root (the anchor).

Why per-depth beams suffice: the best M paths of depth d extend only the best M paths of depth d-1
(scores add), so keeping M = budget-1 per depth and then the global best M loses nothing. The result
is prefix-closed because log-probs are <= 0, so a parent scores at least its child; on a tie the
stable sort puts the lower depth first, so a parent is never dropped for its child.
"""

from __future__ import annotations

import torch

from dflash_sglang.spec.tree_types import NO_PARENT, DraftTree

INVALID = float("-inf")  # a beam entry with no path behind it (vocabulary smaller than the beam)
LOGPROB_FLOOR = -1e9  # keeps a -inf drafter logit apart from INVALID


def node_logprobs(draft_logits: torch.Tensor) -> torch.Tensor:
    """[bs, blk-1, vocab] the drafter's logits -> its log-probs, finite."""
    return torch.log_softmax(draft_logits.float(), dim=-1).clamp(min=LOGPROB_FLOOR)


def _depth_beams(top_lp: torch.Tensor, top_tok: torch.Tensor, beam: int):
    """Per depth, the best `beam` paths: scores, tokens and the rank of their parent one depth up.

    top_lp, top_tok: [bs, D, k] each depth's top-k log-probs (descending) and tokens.
    Returns three [bs, D, beam] tensors; a depth-1 parent rank is NO_PARENT (the root).
    """
    bs, depth_max, k = top_lp.shape
    pad = beam - min(k, beam)
    scores = torch.nn.functional.pad(top_lp[:, 0, :beam], (0, pad), value=INVALID)  # [bs, beam]
    tokens = torch.nn.functional.pad(top_tok[:, 0, :beam], (0, pad), value=0)
    parent = torch.full_like(tokens, NO_PARENT)
    out = [(scores, tokens, parent)]
    for d in range(1, depth_max):
        joint = scores[:, :, None] + top_lp[:, d, None, :]  # [bs, beam, k]
        scores, flat = joint.flatten(1).topk(beam, dim=-1)  # [bs, beam] descending
        parent = flat // k
        tokens = top_tok[:, d].gather(1, flat % k)
        out.append((scores, tokens, parent))
    return tuple(torch.stack(parts, dim=1) for parts in zip(*out))


def build_tree(
    draft_logits: torch.Tensor,  # [bs, blk-1, vocab] the drafter's logits after the anchor
    anchors: torch.Tensor,  # [bs]
    seq_lens: torch.Tensor,  # [bs] committed tokens before the anchor
    budget: int,  # nodes per request, root included
    branching: int | None = None,  # top-k tokens per depth; None: budget-1; 1: the chain
) -> DraftTree:
    bs, depth_max, vocab = draft_logits.shape
    beam = budget - 1
    assert budget >= 1, budget
    if beam == 0 or depth_max == 0:
        return DraftTree.from_parents(anchors[:, None], torch.full((bs, 1), NO_PARENT), seq_lens,
                                      torch.zeros(bs, 1))
    k = min(branching or beam, vocab, beam)
    # top-k of the logits, then normalise only those: no full-vocabulary log-softmax tensor
    top_logits, top_tok = draft_logits.topk(k, dim=-1)  # [bs, D, k]
    lse = torch.logsumexp(draft_logits.float(), dim=-1, keepdim=True)  # [bs, D, 1]
    top_lp = (top_logits.float() - lse).clamp(min=LOGPROB_FLOOR)
    scores, tokens, parent_rank = _depth_beams(top_lp, top_tok, beam)  # [bs, D, beam] each
    # Global best `beam` over all depths; flat order is depth-major, so ties keep parents first.
    order = scores.flatten(1).sort(dim=-1, descending=True, stable=True).indices[:, :beam]  # [bs, beam]
    chosen = order.sort(dim=-1).values  # [bs, beam] topological: by depth, then rank
    chosen_scores = scores.flatten(1).gather(1, chosen)
    assert bool((chosen_scores > INVALID).all()), f"budget {budget} exceeds the paths the drafter's vocabulary allows"
    # Node index (1..beam) of every chosen flat entry; the parent of entry (d, r) is (d-1, parent_rank).
    node_of = torch.full((bs, depth_max * beam), NO_PARENT, device=chosen.device)
    node_of.scatter_(1, chosen, torch.arange(1, beam + 1, device=chosen.device).expand(bs, beam))
    depth0 = chosen // beam  # [bs, beam] depth - 1
    rank = parent_rank.flatten(1).gather(1, chosen)
    parent_flat = ((depth0 - 1) * beam + rank).clamp(min=0)
    parents = torch.where(depth0 == 0, 0, node_of.gather(1, parent_flat))  # [bs, beam]
    assert bool((parents >= 0).all()), "tree not prefix-closed"
    node_tokens = tokens.flatten(1).gather(1, chosen).to(anchors.dtype)
    return DraftTree.from_parents(
        torch.cat([anchors[:, None], node_tokens], dim=1),  # [bs, budget]
        torch.cat([torch.full((bs, 1), NO_PARENT, device=parents.device), parents], dim=1),
        seq_lens,
        torch.cat([torch.zeros(bs, 1, device=chosen_scores.device), chosen_scores], dim=1),
        max_depth=depth_max,
    )
