"""The alternating-rounds benchmark's bookkeeping, on hand-made records: rounds merge into one record per
cell (requests pooled, wall times summed), and each method's speedup is over the AR of its own phase."""

from __future__ import annotations

from dflash_sglang.benchmark.alternating import _merge, markdown_table
from dflash_sglang.benchmark.records import RequestRecord, RunRecord
from dflash_sglang.benchmark.stats import summarize, with_speedups


def _request(tokens: int, correct_drafts_histogram: tuple[int, ...] = ()) -> RequestRecord:
    return RequestRecord(prompt_index=0, latency_s=1.0, chunk_times_s=(0.1, 1.0), chunk_tokens=(1, tokens - 1),
                         completion_tokens=tokens, correct_drafts_histogram=correct_drafts_histogram)


def test_rounds_merge_and_speedup_is_over_the_same_phases_ar():
    # AR: 10 tokens in 1 s, then 10 in 3 s -> 20 tokens / 4 s = 5 tok/s.
    # dflash: 2 verify steps each round (0 and 1 correct drafts -> lengths 1, 2), 10 tokens in 1 s twice -> 10 tok/s.
    runs = [RunRecord("T=1", "ar", 1, 1.0, (_request(10),)), RunRecord("T=1", "ar", 1, 3.0, (_request(10),)),
            RunRecord("T=1", "dflash", 1, 1.0, (_request(10, (1, 1)),), block_size=4),
            RunRecord("T=1", "dflash", 1, 1.0, (_request(10, (1, 1)),), block_size=4)]
    merged = _merge(runs)
    assert [(r.method, r.wall_s, len(r.requests)) for r in merged] == [("ar", 4.0, 2), ("dflash", 2.0, 2)]
    stats = with_speedups([summarize(r) for r in merged])
    assert [s.output_tok_s for s in stats] == [5.0, 10.0]
    assert stats[1].speedup == 2.0 and stats[1].tau == 1.5
    table = markdown_table({"dflash": stats})
    assert "| 1 | 1 | DFLASH (ours, rejection) | 10.0 | 5.0 | 2.00× | 1.50 |" in table


def test_each_rounds_speedup_is_over_the_ar_of_the_same_round():
    """Round 1: 10 vs 10 tok/s; round 2: 10 vs 2.5 tok/s; round 3: 10 vs 5. Pooled, AR made 30 tokens in 7 s;
    per round the ratios are 1, 4 and 2, median 2."""
    from dflash_sglang.benchmark.alternating import round_speedups

    runs = []
    for ar_wall in (1.0, 4.0, 2.0):
        runs += [RunRecord("T=1", "ar", 8, ar_wall, (_request(10),)),
                 RunRecord("T=1", "dflash", 8, 1.0, (_request(10, (1, 1)),), block_size=4)]
    [cell] = round_speedups(runs, "dflash", "ar")
    assert cell["speedups"] == [1.0, 4.0, 2.0] and (cell["median"], cell["min"], cell["max"]) == (2.0, 1.0, 4.0)
    assert (cell["dataset"], cell["concurrency"]) == ("T=1", 8)


def test_each_method_starts_our_worker_with_its_rule_or_budget():
    from dflash_sglang.benchmark.alternating import METHODS, server_plan
    from dflash_sglang.benchmark.args import parse_config

    config = parse_config(["--compare", "ar,dflash,builtin", "--output", "x.json"])
    plans = {m: server_plan(config, m) for m in METHODS}
    budget = {m: args[args.index("--speculative-dflash-tree-budget") + 1] if "--speculative-dflash-tree-budget" in args
              else None for m, (args, _) in plans.items()}
    assert budget == {"dflash": None, "dflash-point-mass": None, "dflash-tree-16": "16", "dflash-auto": "auto",
                      "builtin": None}
    rules = {m: env.get("DFLASH_SGLANG_SAMPLING_RULE") for m, (_, env) in plans.items()}
    assert rules == {m: "point-mass" if m == "dflash-point-mass" else None for m in METHODS}
    assert plans["builtin"][1] == {"DFLASH_SGLANG_IMPL": "builtin"}
    assert all("DFLASH" in args for args, _ in plans.values())


def test_the_command_line_takes_another_pair_and_names_bad_input(tmp_path):
    import pytest

    from dflash_sglang.benchmark.alternating import parse_alternating
    from dflash_sglang.errors import UserError

    target, drafter = tmp_path / "target", tmp_path / "drafter"
    target.mkdir(), drafter.mkdir()
    alt = parse_alternating(["--model", str(target), "--draft-model", str(drafter), "--baseline", "builtin",
                             "--methods", "dflash", "--temperatures", "0", "--server-args", "--foo 1"])
    assert (alt.bench.model, alt.bench.draft_model, alt.bench.dtype) == (target, drafter, None)
    assert (alt.methods, alt.baseline, alt.temperatures, alt.bench.server_args) == (("dflash",), "builtin", (0.0,),
                                                                                     ("--foo", "1"))
    bundled = parse_alternating([])
    assert bundled.bench.dtype == "float32" and bundled.bench.model != target
    for argv, named in ((["--model", str(target)], "--draft-model"),
                        (["--model", str(tmp_path / "missing"), "--draft-model", str(drafter)], "--model"),
                        (["--methods", "dflash", "--baseline", "dflash"], "--methods"),
                        (["--temperatures", "warm"], "--temperatures"), (["--rounds", "0"], "--rounds"),
                        (["--dtype"], "--dtype")):
        with pytest.raises(UserError, match=named):
            parse_alternating(argv)
