"""The budgeted step on a plain-torch Markov pair: every width the controller may choose commits AR's tokens."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.stats import chi2_contingency

from dflash_sglang.spec.budget_controller import BudgetController, BudgetSettings, Plan
from dflash_sglang.spec.budget_step import BudgetedStepper
from dflash_sglang.spec.posterior import SamplingParams, processed_probs
from dflash_sglang.spec.rules import REJECTION
from dflash_sglang.spec.step import StepInput, TargetOutput
from dflash_sglang.spec.types import Candidates

VOCAB, BLOCK = 7, 5


class MarkovPair:
    """Target: next-token logits depend on the previous token only. Drafter: the target's k-step
    marginals from the anchor plus noise, so its drafts are often right and sometimes wrong."""

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.transition_logits = torch.randn(VOCAB, VOCAB, generator=g) * 3  # [prev, next]
        step = torch.softmax(self.transition_logits, dim=-1)
        marginals = torch.stack([torch.linalg.matrix_power(step, k + 1) for k in range(BLOCK)], dim=1)
        self.draft_table = marginals.log() + torch.randn(VOCAB, BLOCK, VOCAB, generator=g)  # [anchor, k, vocab]
        self.committed_widths: list[int] = []  # verify width seen by each commit
        self.reserved = 0

    def draft(self, block):
        logits = self.draft_table[block.block_ids[:, 0], : block.block_size - 1]  # [bs, blk-1, vocab]
        tokens = torch.cat([block.block_ids[:, :1], logits.argmax(-1)], dim=1)  # [bs, blk]
        return Candidates(tokens=tokens, positions=block.positions, draft_logits=logits)

    def reserve_block(self, block):
        self.reserved += 1

    def verify_plain(self, candidates, column):
        return self.verify(candidates)

    def verify(self, candidates):
        logits = self.transition_logits[candidates.tokens]  # [bs, w, vocab]
        return TargetOutput(logits=logits, target_features=torch.zeros(*candidates.tokens.shape, 1))

    def commit(self, candidates, acceptance, target):
        self.committed_widths.append(candidates.tokens.shape[1])

    def reserve(self, num_nodes):  # the tree's temporary slots
        return True

    def release(self):
        pass

    def verify_tree(self, tree):
        logits = self.transition_logits[tree.tokens]  # [bs, n, vocab]: the next token depends on the node only
        return TargetOutput(logits=logits, target_features=torch.zeros(*tree.tokens.shape, 1))

    def commit_tree(self, tree, walked, target):
        self.committed_widths.append(tree.num_nodes)


class FixedWidth(BudgetController):
    """A controller that always picks `width` (1: plain decoding, no draft pass)."""

    def __init__(self, width: int):
        super().__init__(BudgetSettings(BLOCK, tree_widths=(width,) if width > BLOCK else ()))
        self.width = width

    def plan(self, batch_size: int, plain_run: int = 1, trees: bool = True) -> Plan:
        return Plan(self.width > 1, self.width, "fixed")


def _ar_greedy(pair: MarkovPair, first: int, n: int) -> list[int]:
    out = [first]
    while len(out) < n:
        out.append(int(pair.transition_logits[out[-1]].argmax()))
    return out


def _decode(pair: MarkovPair, stepper: BudgetedStepper, anchors: list[int], n: int) -> list[list[int]]:
    outs = [[a] for a in anchors]
    while min(len(o) for o in outs) < n:
        step = StepInput.make_dummy([o[-1] for o in outs], [len(o) for o in outs], block_size=BLOCK)
        result = stepper.step(pair, step)
        for out, row, accepted in zip(outs, result.acceptance.out_tokens.tolist(), result.acceptance.accepted.tolist()):
            out += row[: accepted + 1]
    return [o[:n] for o in outs]


@pytest.mark.parametrize("width", [*range(1, BLOCK + 1), 12], ids=lambda w: f"width{w}")
def test_every_width_commits_the_ar_tokens(width):
    pair = MarkovPair()
    outs = _decode(pair, BudgetedStepper(FixedWidth(width)), anchors=[0, 3, 5], n=30)
    assert outs == [_ar_greedy(pair, a, 30) for a in (0, 3, 5)]
    assert set(pair.committed_widths) == {width}  # the commit saw the verified width (anchor alone for 1)
    assert (pair.reserved > 0) == (width == 1)  # plain decoding reserves the block without drafting


def test_the_auto_controller_commits_the_ar_tokens_while_it_changes_width():
    pair = MarkovPair(seed=1)
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.001  # noqa: E731 - deterministic time: every clock read is 1 ms
    controller = BudgetController(BudgetSettings(BLOCK, tree_widths=(9, 16), explore_share=0.5))
    stepper = BudgetedStepper(controller, clock=clock)
    outs = _decode(pair, stepper, anchors=[1, 2], n=120)
    assert outs == [_ar_greedy(pair, a, 120) for a in (1, 2)]
    assert set(pair.committed_widths) == {*range(1, BLOCK + 1), 9, 16}
    assert set(stepper.tree_gain.gain) == {9, 16} and None not in stepper.tree_gain.gain.values()
    assert bool((stepper.realisation.estimated > 0).all())  # chain steps measured every chain width


@pytest.mark.parametrize("width", [1, 3])
def test_sampled_steps_keep_the_target_distribution(width):
    """A truncated chain is the rejection rule on a shorter block; width 1 samples the target directly."""
    pair, samples, anchor = MarkovPair(seed=2), 3000, 4
    params = SamplingParams.make_dummy([0.8] * samples)
    step = StepInput(torch.full((samples,), anchor), torch.zeros(samples, dtype=torch.long), params, BLOCK, 0, REJECTION)
    result = BudgetedStepper(FixedWidth(width)).step(pair, step, generator=torch.Generator().manual_seed(3))
    first = result.acceptance.out_tokens[:, 0]
    probs = processed_probs(pair.transition_logits[anchor][None, None], SamplingParams.make_dummy([0.8]))[0, 0]
    expected = torch.multinomial(probs, samples, replacement=True, generator=torch.Generator().manual_seed(4))
    table = torch.stack([torch.bincount(first, minlength=VOCAB), torch.bincount(expected, minlength=VOCAB)])
    table = table[:, table.sum(0) > 0].numpy()
    assert chi2_contingency(table).pvalue > 0.001
    assert int(result.acceptance.accepted.max()) <= width - 1


def test_tree_gain_is_a_ratio_of_sums_not_a_mean_of_ratios():
    """Two tree steps: an easy block (the chain would commit 6, the tree commits 6) and a hard one (chain 1,
    tree 3). Per-step ratios 1.0 and 3.0 average 2.0; the tree committed 9 where the chain would have 7."""
    from dflash_sglang.spec.budget_estimate import TreeGain

    gain = TreeGain((16,), decay=1.0)
    assert gain.gain == {16: None} and gain.expected(4.0, 4.0) == {16: 4.0}
    gain.observe(16, committed=6.0, chain_committed=6.0)
    gain.observe(16, committed=3.0, chain_committed=1.0)
    assert abs(gain.gain[16] - 9.0 / 7.0) < 1e-9
    assert abs(gain.expected(5.0, 2.0)[16] - (5.0 + 2.0 * 2.0 / 7.0)) < 1e-9  # only the greedy rows' share gains


def test_the_chain_on_a_walked_block_commits_its_common_prefix_with_the_walk():
    from dflash_sglang.spec.budget_estimate import chain_commits_on_walked_block

    out = torch.tensor([[5, 6, 7, 9, -1, -1], [4, -1, -1, -1, -1, -1]])  # path 5 6 7, bonus 9; bonus 4 at once
    drafts = torch.tensor([[5, 6, 8, 1, 1], [4, 2, 2, 2, 2]])  # [bs, blk-1]
    assert chain_commits_on_walked_block(out, drafts).tolist() == [3, 2]  # 2 drafts + bonus; draft = bonus
    assert chain_commits_on_walked_block(out, torch.tensor([[1] * 5, [0] * 5])).tolist() == [1, 1]


@pytest.mark.parametrize("seed", range(4))
def test_tree_gain_pairs_each_tree_with_the_chain_on_the_same_block(seed):
    """On the Markov pair, greedy: what the argmax chain would have committed on each tree step's block,
    replayed by brute force (the target's argmax after each draft), is what the gain divides by."""
    pair, bs = MarkovPair(seed=seed), 64
    anchors = torch.randint(0, VOCAB, (bs,), generator=torch.Generator().manual_seed(seed))
    stepper = BudgetedStepper(FixedWidth(16))
    result = stepper.step(pair, StepInput.make_dummy(anchors.tolist(), [3] * bs, block_size=BLOCK))
    chain_total = 0
    for anchor in anchors.tolist():
        drafts, token, committed = pair.draft_table[anchor, : BLOCK - 1].argmax(-1).tolist(), anchor, 1
        for draft in drafts:
            token = int(pair.transition_logits[token].argmax())
            if draft != token:
                break
            committed += 1
        chain_total += committed
    tree_total = int(result.acceptance.acceptance_lengths.sum())
    assert stepper.tree_gain.gain[16] == pytest.approx(tree_total / chain_total)
    assert tree_total >= chain_total  # a tree of 16 on 7 tokens holds the whole chain


def test_a_batch_of_sampled_rows_never_explores_trees():
    """A tree's gain is measured on greedy rows only: on sampled ones its exploration cost time and taught nothing
    (at T 0.7, c=1: 2.4 % of the scheduler's time in tree verifies, 2026-12-01). A greedy row brings them back."""
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.001  # noqa: E731
    controller = BudgetController(BudgetSettings(BLOCK, tree_widths=(9, 16), explore_share=0.5))
    stepper, pair, g = BudgetedStepper(controller, clock=clock), MarkovPair(seed=1), torch.Generator().manual_seed(0)
    for top_ks in ([1 << 30, 1 << 30], [1 << 30, 1]):  # top-k 1: a greedy row
        params = SamplingParams.make_dummy([0.8, 0.8], top_ks=top_ks)
        for _ in range(40):
            step = StepInput(torch.tensor([1, 2]), torch.tensor([5, 5]), params, BLOCK, 0, REJECTION)
            stepper.step(pair, step, generator=g)
        widths, pair.committed_widths = set(pair.committed_widths), []
        print(f"top-k {top_ks}: widths {sorted(widths)}")
        assert (max(widths) > BLOCK) == (1 in top_ks)
