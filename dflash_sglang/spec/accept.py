"""Accept: keep the longest prefix of drafts that the target itself would have produced.

With `posterior[:, k]` the target's own token after the first k+1 block tokens (its argmax, or a
sample of its processed distribution), draft d_{k+1} is accepted iff it equals posterior[:, k]
and every earlier draft was accepted. The first mismatching posterior token is the bonus token.

This is lossless for sampling too. The drafter proposes a point mass q = 1[d], so Leviathan et
al.'s test accepts d with probability min(1, p(d)/q(d)) = p(d), and on rejection samples from
norm(max(p - q, 0)) = p restricted to tokens != d. Drawing t ~ p and accepting iff t == d gives
exactly these two events with these probabilities, and the emitted token is t in both cases.
"""

from __future__ import annotations

import torch

from dflash_sglang.spec.types import PLACEHOLDER_TOKEN_ID, Acceptance, Candidates, Verification


def accept(candidates: Candidates, verification: Verification) -> Acceptance:
    drafts = candidates.tokens[:, 1:]  # [bs, blk-1]
    posterior = verification.posterior  # [bs, blk]
    assert posterior.shape == candidates.tokens.shape, (posterior.shape, candidates.tokens.shape)
    if drafts.shape[1] == 0:  # plain decoding (the anchor alone): the target's token is the bonus, nothing to match
        bonus = posterior[:, 0]  # [bs]
        return Acceptance(accepted=torch.zeros_like(bonus), bonus=bonus, out_tokens=posterior)
    matches = (drafts == posterior[:, :-1]).to(torch.int32)  # [bs, blk-1]
    accepted = matches.cumprod(dim=1).sum(dim=1)  # [bs]
    bonus = posterior.gather(1, accepted[:, None].long())[:, 0]  # [bs]
    return Acceptance(accepted=accepted, bonus=bonus, out_tokens=commit_tokens(drafts, accepted, bonus))


def commit_tokens(
    drafts: torch.Tensor,  # [bs, blk-1]
    accepted: torch.Tensor,  # [bs]
    bonus: torch.Tensor,  # [bs]
) -> torch.Tensor:
    """Row i: the accepted drafts, the bonus token at index accepted[i], then placeholders."""
    bs, num_drafts = drafts.shape
    columns = torch.arange(num_drafts + 1, device=drafts.device)[None, :]  # [1, blk]
    padded = torch.cat([drafts, drafts.new_full((bs, 1), PLACEHOLDER_TOKEN_ID)], dim=1)  # [bs, blk]
    out = torch.where(columns < accepted[:, None], padded, PLACEHOLDER_TOKEN_ID)
    return torch.where(columns == accepted[:, None], bonus[:, None].to(out.dtype), out)  # [bs, blk]
