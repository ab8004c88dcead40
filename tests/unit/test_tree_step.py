"""Tree steps end to end on a toy target whose next token depends on the whole path it attends to, so
a wrong ancestor mask or parent index changes its output. Greedy: equal to AR. Sampled: AR's
distribution. Chain through the tree path: today's chain, step for step."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from dflash_sglang.spec.posterior import SamplingParams, processed_probs
from dflash_sglang.spec.rules import POINT_MASS, REJECTION
from dflash_sglang.spec.step import StepInput, TargetOutput, speculative_step
from dflash_sglang.spec.tree_step import tree_step
from dflash_sglang.spec.types import Candidates

MOD, BASE = 1009, 31


class PathTarget:
    """Target: logits = table[hash of the tokens it attends to]. The hash weighs each token by its
    position, so the verify reads exactly the keys its mask allows. Drafter: the target's own greedy
    continuation of the context as a soft favourite plus noise, one parallel pass over the block."""

    def __init__(self, vocab: int, contexts: list[list[int]], seed: int = 0, mask: str = "tree"):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(MOD, vocab, generator=g) * 3  # [hash, vocab]
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.contexts = [list(c) for c in contexts]  # committed tokens per request
        self.powers = [pow(BASE, k, MOD) for k in range(512)]
        self.mask = mask  # "tree" (the ancestors) or "causal", the bug the guard shows

    def seq_hash(self, tokens: list[int]) -> int:
        return sum(t * self.powers[k] for k, t in enumerate(tokens)) % MOD

    def next_logits(self, tokens: list[int]) -> torch.Tensor:
        return self.table[self.seq_hash(tokens)]

    def draft(self, block):
        bs, blk = block.block_ids.shape
        logits = []
        for b in range(bs):
            seq, favourites = self.contexts[b] + [int(block.block_ids[b, 0])], []
            for _ in range(blk - 1):
                seq.append(int(self.next_logits(seq).argmax()))
                favourites.append(seq[-1])
            row = torch.randn(blk - 1, self.table.shape[1], generator=self.noise) * 1.5
            row[torch.arange(blk - 1), favourites] += 2.0
            logits.append(row)
        logits = torch.stack(logits)  # [bs, blk-1, vocab]
        tokens = torch.cat([block.block_ids[:, :1], logits.argmax(-1)], dim=1)
        return Candidates(tokens=tokens, positions=block.positions, draft_logits=logits)

    def _verify(self, tokens, positions, visible):  # [bs, n], [bs, n], [bs, n, n]
        bs, n = tokens.shape
        out = torch.empty(bs, n, self.table.shape[1])
        for b in range(bs):
            prefix = self.seq_hash(self.contexts[b])
            weighted = [int(tokens[b, j]) * self.powers[int(positions[b, j])] for j in range(n)]
            for i in range(n):
                h = (prefix + sum(w for j, w in enumerate(weighted) if visible[b, i, j])) % MOD
                out[b, i] = self.table[h]
        return TargetOutput(logits=out, target_features=torch.zeros(bs, n, 1))

    def verify(self, candidates):
        n = candidates.tokens.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool).tril().expand(candidates.tokens.shape[0], n, n)
        return self._verify(candidates.tokens, candidates.positions, causal)

    def verify_tree(self, tree):
        n = tree.num_nodes
        causal = torch.ones(n, n, dtype=torch.bool).tril().expand(tree.tokens.shape[0], n, n)
        return self._verify(tree.tokens, tree.positions, tree.ancestors if self.mask == "tree" else causal)

    def commit(self, candidates, acceptance, target):
        self._append(candidates.tokens[:, 0], acceptance)

    def commit_tree(self, tree, walked, target):
        self._append(tree.tokens[:, 0], walked.acceptance)

    def _append(self, anchors, acceptance):  # the anchor joins the context; the bonus is the next anchor
        for b, (anchor, n) in enumerate(zip(anchors.tolist(), acceptance.accepted.tolist())):
            self.contexts[b] += [anchor] + acceptance.out_tokens[b, :n].tolist()


def ar_greedy(model: PathTarget, context: list[int], count: int) -> list[int]:
    seq = list(context)
    for _ in range(count):
        seq.append(int(model.next_logits(seq).argmax()))
    return seq[len(context):]


def generate(model: PathTarget, anchors: list[int], blk: int, steps: int, budget: int | None, **kw):
    """Decode `steps` steps; returns each request's tokens after its context (anchor first), and τ."""
    bs = len(anchors)
    anchors_t, params = torch.tensor(anchors), SamplingParams.make_dummy([1.0] * bs, top_ks=[1] * bs)
    start = [len(c) for c in model.contexts]
    committed = 0
    for _ in range(steps):
        step = StepInput(anchors_t, torch.tensor([len(c) for c in model.contexts]), params, blk, 0)
        acc = tree_step(model, step, budget, **kw) if budget else speculative_step(model, step)
        committed += int(acc.acceptance_lengths.sum())
        anchors_t = acc.bonus
    return [c[s:] + [int(a)] for c, s, a in zip(model.contexts, start, anchors_t)], committed / (steps * bs)


CONTEXTS = [[5, 1, 4], [2, 7], [3, 3, 3, 1]]


@pytest.mark.parametrize("budget", [2, 8, 24], ids=["n2", "n8", "n24"])
def test_greedy_tree_equals_ar(budget):
    model = PathTarget(vocab=12, contexts=CONTEXTS)
    out, tau = generate(model, [6, 6, 6], blk=6, steps=8, budget=budget)
    for context, tokens in zip(CONTEXTS, out):
        assert tokens[1:] == ar_greedy(PathTarget(12, [context]), context + [6], len(tokens) - 1)
    print(f"budget {budget}: tau {tau:.2f}")


def test_guard_causal_mask_is_not_ar():
    """The verify must use the ancestor mask: with a causal mask over the tree's node order the
    target reads siblings' tokens and the output leaves AR's (the test above would catch it)."""
    model = PathTarget(vocab=12, contexts=CONTEXTS, mask="causal")
    out, _ = generate(model, [6, 6, 6], blk=6, steps=8, budget=24)
    ar = [ar_greedy(PathTarget(12, [c]), c + [6], len(t) - 1) for c, t in zip(CONTEXTS, out)]
    assert any(t[1:] != a for t, a in zip(out, ar))


def test_chain_through_the_tree_is_the_chain():
    chain, tree = PathTarget(12, CONTEXTS, seed=3), PathTarget(12, CONTEXTS, seed=3)
    out_chain, tau_chain = generate(chain, [6, 6, 6], blk=5, steps=10, budget=None)
    out_tree, tau_tree = generate(tree, [6, 6, 6], blk=5, steps=10, budget=5, branching=1)
    assert out_chain == out_tree and tau_chain == tau_tree


@pytest.mark.parametrize("rule", [REJECTION, POINT_MASS])
def test_sampled_tree_keeps_the_target_distribution(rule):
    """One step, 4000 requests from one context: the first token ~ p(.|context), the second
    ~ p(.|context, first) whenever the step produced one. Speculative sampling walks branches drawn from q
    (spec/tree_sampled.py), the point-mass rule the DDTree."""
    vocab, samples, context, anchor = 6, 4000, [1, 2], 3
    model = PathTarget(vocab, [context] * samples, seed=5)
    params = SamplingParams.make_dummy([0.9] * samples)
    step = StepInput(torch.full((samples,), anchor), torch.full((samples,), len(context)), params, 4, 0, rule)
    acc = tree_step(model, step, budget=8, generator=torch.Generator().manual_seed(6))

    def probs(seq):
        p = processed_probs(model.next_logits(seq)[None, None], SamplingParams.make_dummy([0.9]))[0, 0].double()
        return (p / p.sum()).numpy()

    first = acc.out_tokens[:, 0]
    assert chisquare(torch.bincount(first, minlength=vocab).numpy(), probs(context + [anchor]) * samples).pvalue > 1e-3
    for token in range(vocab):
        second = acc.out_tokens[(acc.accepted >= 1) & (first == token), 1]
        if len(second) > 300:
            expected = probs(context + [anchor, token]) * len(second)
            assert chisquare(torch.bincount(second, minlength=vocab).numpy(), expected).pvalue > 1e-3, token
    assert acc.accepted.float().mean() > 0.3  # the tree accepts drafts, so the second check ran
