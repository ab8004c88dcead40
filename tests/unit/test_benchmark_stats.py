"""The benchmark's statistics, report and argument parsing, on hand-made results with known answers.

No server: the records below are written by hand, and every expected value is worked out in the comment
beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dflash_sglang.benchmark import stats
from dflash_sglang.benchmark.args import METHODS, parse_config
from dflash_sglang.benchmark.records import RequestRecord, RunRecord
from dflash_sglang.benchmark.report import markdown_table, report_dict, write_json
from dflash_sglang.errors import UserError

BLOCK = 4

# Request A: 3 verify steps accepting 0, 1 and 3 drafts -> lengths 1, 2, 4; 1 prefill token + 7 = 8 tokens.
# Request B: 2 verify steps accepting 1 and 1 drafts -> lengths 2, 2; 1 + 4 = 5 tokens.
REQ_A = RequestRecord(prompt_index=0, latency_s=0.7, chunk_times_s=(0.1, 0.3, 0.4, 0.7), chunk_tokens=(1, 1, 2, 4),
                      completion_tokens=8, spec_verify_ct=3, correct_drafts_histogram=(1, 1, 0, 1),
                      acceptance_lengths=(1, 2, 4))
REQ_B = RequestRecord(prompt_index=1, latency_s=0.5, chunk_times_s=(0.2, 0.5, 0.5), chunk_tokens=(1, 2, 2),
                      completion_tokens=5, spec_verify_ct=2, correct_drafts_histogram=(0, 2))
SPEC_RUN = RunRecord("humaneval", "dflash", 2, wall_s=1.0, requests=(REQ_A, REQ_B), block_size=BLOCK)
# AR: 13 tokens, one per chunk, in 2.0 s.
AR_REQ = RequestRecord(prompt_index=0, latency_s=1.2, chunk_times_s=tuple(0.1 * (i + 1) for i in range(13)),
                       chunk_tokens=(1,) * 13, completion_tokens=13)
AR_RUN = RunRecord("humaneval", "ar", 2, wall_s=2.0, requests=(AR_REQ,))


def test_percentiles_interpolate_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]  # sorted 1..4, rank = 3q/100
    assert stats.percentile(values, 50) == pytest.approx(2.5)
    assert stats.percentile(values, 90) == pytest.approx(3.7)  # rank 2.7: 3 + 0.7
    assert stats.percentile(values, 0) == 1.0 and stats.percentile(values, 100) == 4.0
    assert stats.percentile([7.0], 99) == 7.0
    summary = stats.latency_summary_ms([0.001, 0.002, 0.003])
    assert summary["mean"] == pytest.approx(2.0) and summary["p50"] == pytest.approx(2.0)
    assert summary["p99"] == pytest.approx(2.98)  # rank 1.98: 2 + 0.98 ms
    assert stats.latency_summary_ms([]) is None


def test_tau_histogram_and_position_rates_from_sglang_counters():
    counts = stats.length_counts(SPEC_RUN.requests, BLOCK)
    assert counts == [1, 3, 0, 1]  # lengths 1 | 2, 2, 2 | - | 4
    assert stats.mean_length(counts) == pytest.approx(11 / 5)  # (1 + 2+2+2 + 4) / 5 steps
    # Position k accepted when length > k: k=1 in 4 of 5 steps, k=2 and k=3 in 1 of 5.
    assert stats.position_acceptance(counts) == pytest.approx([0.8, 0.2, 0.2])
    assert stats.tau_sglang(SPEC_RUN.requests) == pytest.approx(13 / 5)  # counts the 2 prefill tokens
    assert stats.mean_length([0, 0, 0]) is None and stats.position_acceptance([0, 0]) is None


def test_histogram_grows_past_the_block_when_a_method_reports_deeper_drafts():
    deep = RequestRecord(0, 1.0, (1.0,), (1,), 7, spec_verify_ct=1, correct_drafts_histogram=(0, 0, 0, 0, 0, 1))
    assert stats.length_counts((deep,), BLOCK) == [0, 0, 0, 0, 0, 1]


def test_latencies_ttft_inter_chunk_and_per_token():
    assert stats.ttfts(SPEC_RUN.requests) == pytest.approx([0.1, 0.2])
    # A: gaps 0.2, 0.1, 0.3; B: gaps 0.3, 0.0
    assert stats.inter_chunk_latencies(SPEC_RUN.requests) == pytest.approx([0.2, 0.1, 0.3, 0.3, 0.0])
    # Each gap is shared by its chunk's tokens: A 0.2/1, 0.1/2 ×2, 0.3/4 ×4; B 0.3/2 ×2, 0/2 ×2.
    expected = [0.2, 0.05, 0.05] + [0.075] * 4 + [0.15, 0.15, 0.0, 0.0]
    assert stats.inter_token_latencies(SPEC_RUN.requests) == pytest.approx(expected)


def test_summary_speedup_and_efficiency():
    spec, ar = stats.summarize(SPEC_RUN), stats.summarize(AR_RUN)
    assert spec.output_tokens == 13 and spec.output_tok_s == pytest.approx(13.0)
    assert spec.verify_steps == 5 and spec.tau == pytest.approx(2.2)
    assert spec.tau_histogram == pytest.approx([0.2, 0.6, 0.0, 0.2])
    assert spec.tau_steps is None  # only request A carries our per-step list
    assert ar.tau == 1.0 and ar.output_tok_s == pytest.approx(6.5) and ar.tau_histogram is None
    by_method = {s.method: s for s in stats.with_speedups([ar, spec])}
    assert by_method["dflash"].speedup == pytest.approx(2.0)  # 13 / 6.5 tok/s
    assert by_method["dflash"].efficiency == pytest.approx(2.0 / 2.2)
    assert by_method["ar"].speedup == pytest.approx(1.0) and by_method["ar"].efficiency == pytest.approx(1.0)


def test_tau_from_our_per_step_lists_when_every_request_has_one():
    both = (REQ_A, RequestRecord(1, 0.5, (0.2, 0.5), (1, 2), 3, acceptance_lengths=(2,)))
    assert stats.tau_from_steps(both) == pytest.approx(9 / 4)  # (1 + 2 + 4 + 2) / 4 steps


def test_a_plain_run_counts_as_one_step_per_pass_where_our_lists_say_so():
    """`auto`'s plain run of 4 passes: SGLang's histogram saw one step with 3 correct drafts, our list four
    steps of 1. The summary's tau and histogram follow our lists; tau_sglang stays SGLang's."""
    run_req = RequestRecord(0, 1.0, (0.1, 0.5), (1, 4), 5, spec_verify_ct=1, correct_drafts_histogram=(0, 0, 0, 1),
                            acceptance_lengths=(1, 1, 1, 1))
    spec = stats.summarize(RunRecord("humaneval", "dflash", 1, wall_s=1.0, requests=(run_req,), block_size=BLOCK))
    assert spec.tau == pytest.approx(1.0) and spec.verify_steps == 4
    assert spec.tau_histogram[0] == pytest.approx(1.0)
    assert stats.length_counts((run_req,), BLOCK)[3] == 1  # what SGLang's histogram alone would say


def test_no_speedup_without_a_baseline_at_that_concurrency():
    other_c = RunRecord("humaneval", "ar", 8, wall_s=1.0, requests=(AR_REQ,))
    out = stats.with_speedups([stats.summarize(SPEC_RUN), stats.summarize(other_c)])
    assert out[0].speedup is None and out[0].efficiency is None


def _results() -> tuple[list, list[RunRecord]]:
    failed = RunRecord("humaneval", "ngram", 2, error="server did not start: boom\n--- server log tail ---\nX")
    runs = [AR_RUN, SPEC_RUN, failed]
    return stats.with_speedups([stats.summarize(r) for r in runs]), runs


def test_markdown_table_has_one_row_per_run_and_says_why_a_method_failed():
    table, _ = _results()
    lines = markdown_table(table).splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| humaneval | 2 | ar | 6.5 | 1.00 | 1.00× | 1.00 |")
    assert lines[3].startswith("| humaneval | 2 | dflash | 13.0 | 2.20 | 2.00× | 0.91 | 150.0 |")  # TTFT p50
    assert "| ngram | failed: server did not start: boom |" in lines[4]
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_json_report_round_trips_results_and_raw_requests(tmp_path):
    table, runs = _results()
    config = parse_config(["--compare", "ar,dflash", "--output", str(tmp_path / "r.json")])
    path = tmp_path / "r.json"
    write_json(path, report_dict(config, table, runs, tmp_path, env={"sglang": "x"}))
    data = json.loads(path.read_text())
    assert [r["method"] for r in data["results"]] == ["ar", "dflash", "ngram"]
    assert data["results"][1]["position_acceptance"] == pytest.approx([0.8, 0.2, 0.2])
    assert data["results"][2]["error"].startswith("server did not start")
    assert data["runs"][1]["requests"][0]["correct_drafts_histogram"] == [1, 1, 0, 1]
    assert data["config"]["methods"] == ["ar", "dflash"] and data["config"]["concurrencies"] == [1]


def test_plot_is_a_png(tmp_path):
    from dflash_sglang.benchmark.plot import write_plot

    table, _ = _results()
    write_plot(tmp_path / "r.png", table, "hand-made")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_arguments_parse_z_lab_flags_and_lists():
    config = parse_config(["--backend", "sglang", "--compare", "ar,ngram,dflash,builtin", "--concurrency", "1,8",
                           "--num-prompts", "4", "--max-new-tokens", "32", "--temperature", "0.5"])
    assert config.methods == ("ar", "ngram", "dflash", "builtin") and config.concurrencies == (1, 8)
    assert (config.num_prompts, config.max_new_tokens, config.temperature) == (4, 32, 0.5)
    assert config.dtype == "float32" and config.model is not None and config.block_size == 8  # bundled pair
    remote = parse_config(["--base-url", "http://h:1/", "--model", "some/model"])
    assert remote.base_url == "http://h:1" and remote.methods == ()


@pytest.mark.parametrize("argv, fragment", [
    (["--compare", "ar,eagle"], "--compare: expected a comma list of ar, ngram, dflash, builtin, got 'ar,eagle'"),
    (["--compare", "ar,ar"], "each method once"),
    (["--concurrency", "1,x"], "--concurrency"),
    (["--concurrency", "0"], "--concurrency"),
    (["--base-url", "http://h:1", "--compare", "ar"], "got both"),
    (["--backend", "vllm"], "--backend: expected sglang"),
    (["--num-prompts", "0"], "--num-prompts"),
])
def test_bad_arguments_are_user_errors(argv, fragment):
    with pytest.raises(UserError) as info:
        parse_config(argv)
    assert fragment in str(info.value)


def test_bad_compare_is_one_line_on_the_command_line():
    result = subprocess.run([sys.executable, "-m", "dflash_sglang.benchmark", "--compare", "ar,eagle"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dflash-sglang: error: --compare"), result.stderr
    assert all(method in lines[0] for method in METHODS)
