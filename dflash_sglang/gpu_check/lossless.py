"""Greedy output of a speculative method against AR's, prompt by prompt, in token ids.

fp32 must match exactly. In bf16 two kernels may break a near-tie between two tokens differently (a
verify pass over a block sums in another order than a one-token decode), after which the texts part;
there the first divergence is reported, not judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from dflash_sglang.benchmark.records import RunRecord


@dataclass(frozen=True)
class Divergence:
    prompt_index: int
    position: int  # index of the first generated token that differs
    expected: int | None  # AR's token there; None when AR's output had ended
    got: int | None  # the method's token there; None when its output had ended


@dataclass(frozen=True)
class Comparison:
    identical: int  # prompts whose output equals AR's
    total: int
    first: Divergence | None  # at the lowest prompt index that differs

    @property
    def equal(self) -> bool:
        return self.identical == self.total


def first_difference(expected: tuple[int, ...], got: tuple[int, ...]) -> int | None:
    """Index of the first differing token (a length difference counts at the shorter end); None if equal."""
    for i, (a, b) in enumerate(zip(expected, got)):
        if a != b:
            return i
    return None if len(expected) == len(got) else min(len(expected), len(got))


def compare(reference: RunRecord, run: RunRecord) -> Comparison:
    """`run`'s outputs against `reference`'s (AR at the same concurrency), matched by prompt index."""
    assert reference.ok and run.ok, "compare only runs that produced outputs"
    expected = {r.prompt_index: r.output_ids for r in reference.requests}
    got = {r.prompt_index: r.output_ids for r in run.requests}
    assert expected.keys() == got.keys(), (sorted(expected), sorted(got))
    first = None
    identical = 0
    for index in sorted(expected):
        position = first_difference(expected[index], got[index])
        if position is None:
            identical += 1
        elif first is None:
            first = Divergence(index, position, _at(expected[index], position), _at(got[index], position))
    return Comparison(identical, len(expected), first)


def _at(tokens: tuple[int, ...], position: int) -> int | None:
    return tokens[position] if position < len(tokens) else None


def verdict(comparison: Comparison | None, exact: bool) -> str:
    """The table's cell: `yes`, or where the outputs part (`NO` when exactness was required)."""
    if comparison is None:
        return "–"
    if comparison.equal:
        return f"yes ({comparison.total}/{comparison.total})"
    d = comparison.first
    assert d is not None
    where = (f"prompt {d.prompt_index} token {d.position}: AR {_token(d.expected)}, got {_token(d.got)}; "
             f"{comparison.identical}/{comparison.total} identical")
    return f"NO, {where}" if exact else f"first divergence at {where}"


def _token(token: int | None) -> str:
    return "end" if token is None else str(token)
