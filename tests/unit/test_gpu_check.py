"""`make gpu-check` without a GPU: its arguments, the matrix it plans per device, the greedy comparison,
the time budget, the table, and the one-line exit 2 on this CUDA-less host.

Every expected value is worked out beside it; the records are written by hand (no server).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dflash_sglang.benchmark.records import RequestRecord, RunRecord
from dflash_sglang.errors import UserError
from dflash_sglang.gpu_check import lossless, plan
from dflash_sglang.gpu_check.args import BACKENDS, parse_config
from dflash_sglang.gpu_check.plan import Cell, Device, build_plan
from dflash_sglang.gpu_check.run import bench_config, passed, rows_of, run_plan
from dflash_sglang.gpu_check.table import NotRun, render

REPO = Path(__file__).resolve().parents[2]


# --- arguments ---------------------------------------------------------------------------------------

def test_defaults_ask_for_the_whole_matrix_within_seven_minutes():
    config = parse_config([])
    assert config.backends == BACKENDS == ("fa3", "flashinfer", "triton", "trtllm_mha")
    assert config.dtypes == ("bfloat16", "float32") and config.graphs == (True, False)
    assert config.budget_s == 420.0


def test_aliases_and_order_are_kept():
    config = parse_config(["--backends", "triton, fa3", "--dtypes", "fp32,BF16", "--graphs", "off",
                           "--budget-min", "2"])
    assert config.backends == ("triton", "fa3") and config.dtypes == ("float32", "bfloat16")
    assert config.graphs == (False,) and config.budget_s == 120.0


@pytest.mark.parametrize(("argv", "message"), [
    (["--backends", "fa4"], "--backends: expected a comma list of fa3, flashinfer, triton, trtllm_mha, got 'fa4'"),
    (["--backends", ""], "--backends: expected a comma list"),
    (["--dtypes", "fp16"], "--dtypes: expected a comma list of bf16, bfloat16, fp32, float32, got 'fp16'"),
    (["--dtypes", "bf16,bfloat16"], "--dtypes: expected each value once"),
    (["--graphs", "maybe"], "--graphs: expected a comma list of on, off"),
    (["--num-prompts", "0"], "--num-prompts: expected a number >= 1, got 0"),
    (["--budget-min", "0.1"], "--budget-min: expected a number >= 0.5, got 0.1"),
    (["--budget-min", "x"], "argument --budget-min: invalid float value: 'x'"),
])
def test_bad_arguments_are_one_line_errors(argv, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(argv)


# --- the plan ----------------------------------------------------------------------------------------

def _runs(cells: list[Cell]) -> list[str]:
    return [c.label for c in cells if c.skip is None]


def test_hopper_runs_fa3_flashinfer_triton_in_bf16_and_triton_in_fp32_graphs_on_first():
    cells = build_plan(parse_config([]), Device("H100", (9, 0)))
    assert len(cells) == 4 * 2 * 2  # every combination asked for is in the plan, run or not
    assert _runs(cells) == [
        "triton fp32 graphs on",  # graphs on first, fp32 (the exact check) first among them
        "fa3 bf16 graphs on", "flashinfer bf16 graphs on", "triton bf16 graphs on",
        "triton fp32 graphs off",
        "fa3 bf16 graphs off", "flashinfer bf16 graphs off", "triton bf16 graphs off",
    ]
    skipped = {c.label: c.skip for c in cells if c.skip}
    assert skipped["trtllm_mha bf16 graphs on"] == "trtllm_mha needs SM 10.x (Blackwell), this GPU is SM 9.0"
    assert skipped["fa3 fp32 graphs off"] == "fa3 kernels take fp16/bf16, not fp32"


@pytest.mark.parametrize(("capability", "backends"), [
    ((8, 0), {"fa3", "flashinfer", "triton"}),  # A100: SGLang's fa3 accepts SM 8.x
    ((8, 9), {"fa3", "flashinfer", "triton"}),  # L4 / RTX 4090
    ((10, 0), {"flashinfer", "triton", "trtllm_mha"}),  # B200: trtllm_mha, no fa3
    ((12, 0), {"flashinfer", "triton"}),  # RTX 5090: neither
    ((7, 5), {"flashinfer", "triton"}),  # T4
])
def test_backends_follow_sglangs_compute_capability_rules(capability, backends):
    cells = build_plan(parse_config([]), Device("gpu", capability))
    assert {c.backend for c in cells if c.skip is None} == backends
    assert {c.backend for c in cells if c.skip is None and c.dtype == "float32"} == {"triton"}


def test_a_cell_is_the_same_flags_for_every_method():
    on, off = Cell("flashinfer", "bfloat16", True), Cell("triton", "float32", False)
    assert on.server_args() == ("--attention-backend", "flashinfer", "--cuda-graph-max-bs-decode", "8",
                                "--disable-prefill-cuda-graph", "--skip-server-warmup")
    assert off.server_args()[:4] == ("--attention-backend", "triton", "--cuda-graph-backend-decode", "disabled")
    assert off.exact and not on.exact
    bench = bench_config(parse_config(["--num-prompts", "4"]), on, Path("/tmp/x"))
    assert bench.methods == plan.METHODS == ("ar", "dflash", "builtin") and bench.concurrencies == (1, 8)
    assert bench.server_args == on.server_args() and bench.dtype == "bfloat16" and bench.num_prompts == 4
    assert bench.temperature == 0.0 and bench.block_size == 8  # the bundled drafter's block


# --- greedy comparison -------------------------------------------------------------------------------

def _req(index: int, ids: tuple[int, ...]) -> RequestRecord:
    return RequestRecord(prompt_index=index, latency_s=1.0, chunk_times_s=(0.5, 1.0), chunk_tokens=(1, len(ids) - 1),
                         completion_tokens=len(ids), output_ids=ids)


def _run(method: str, c: int, outputs: list[tuple[int, ...]], wall: float = 2.0) -> RunRecord:
    return RunRecord("humaneval", method, c, wall_s=wall, requests=tuple(_req(i, o) for i, o in enumerate(outputs)),
                     block_size=None if method == "ar" else 4)


def test_first_difference_counts_a_shorter_output_at_its_end():
    assert lossless.first_difference((1, 2, 3), (1, 2, 3)) is None
    assert lossless.first_difference((1, 2, 3), (1, 5, 3)) == 1
    assert lossless.first_difference((1, 2, 3), (1, 2)) == 2


def test_comparison_reports_the_lowest_prompt_that_differs():
    ar = _run("ar", 1, [(1, 2), (3, 4, 5), (6,), (7, 8)])
    spec = _run("dflash", 1, [(1, 2), (3, 9, 5), (6,), (7,)])  # prompt 1 at token 1; prompt 3 ends early
    result = lossless.compare(ar, spec)
    assert (result.identical, result.total, result.equal) == (2, 4, False)
    assert result.first == lossless.Divergence(prompt_index=1, position=1, expected=4, got=9)
    assert lossless.verdict(result, exact=True) == "NO, prompt 1 token 1: AR 4, got 9; 2/4 identical"
    assert lossless.verdict(result, exact=False).startswith("first divergence at prompt 1 token 1")
    assert lossless.verdict(lossless.compare(ar, ar), exact=True) == "yes (4/4)"


# --- rows, budget, table -----------------------------------------------------------------------------

def _cell_runs(dflash_outputs) -> list[RunRecord]:
    ar = [(1, 2, 3, 4)] * 2
    return [_run("ar", 1, ar, wall=4.0), _run("ar", 8, ar, wall=2.0),  # 8 tokens: 2 and 4 tok/s
            _run("dflash", 1, dflash_outputs, wall=1.0), _run("dflash", 8, ar, wall=1.0),
            RunRecord("humaneval", "builtin", 1, error="server did not start: CUDA OOM\n--- tail ---"),
            RunRecord("humaneval", "builtin", 8, error="server did not start: CUDA OOM\n--- tail ---")]


def test_rows_carry_speedup_over_the_cells_own_ar_and_the_greedy_verdict():
    cell = Cell("triton", "float32", True)
    rows = rows_of(cell, _cell_runs([(1, 2, 3, 4), (1, 2, 0, 4)]))
    assert [(r.stats.concurrency, r.stats.method) for r in rows] == [
        (1, "ar"), (1, "dflash"), (1, "builtin"), (8, "ar"), (8, "dflash"), (8, "builtin")]
    by = {(r.stats.concurrency, r.stats.method): r for r in rows}
    assert by[1, "dflash"].stats.speedup == pytest.approx(4.0)  # 8 tok/s over AR's 2
    assert by[8, "dflash"].stats.speedup == pytest.approx(2.0)  # 8 over 4
    assert by[1, "dflash"].lossless == "NO, prompt 1 token 2: AR 3, got 0; 1/2 identical"
    assert by[8, "dflash"].lossless == "yes (2/2)" and by[1, "ar"].lossless == "–"
    assert not passed(rows)  # a fp32 mismatch and a server that did not start
    assert passed([by[8, "ar"], by[8, "dflash"]])


def test_table_has_one_row_per_method_and_one_per_cell_not_run():
    cell = Cell("triton", "float32", True)
    rows = rows_of(cell, _cell_runs([(1, 2, 3, 4)] * 2))
    text = render(rows, [NotRun(Cell("fa3", "float32", True), "fa3 kernels take fp16/bf16, not fp32")])
    lines = text.splitlines()
    assert lines[0] == "| backend | dtype | graphs | c | method | tok/s | τ | speedup | greedy = AR |"
    assert len(lines) == 2 + 6 + 1
    assert lines[2] == "| triton | fp32 | on | 1 | AR | 2.0 | 1.00 | 1.00× | – |"
    assert lines[3] == "| triton | fp32 | on | 1 | DFLASH (ours) | 8.0 | – | 4.00× | yes (2/2) |"
    assert lines[4] == "| triton | fp32 | on | 1 | DFLASH (builtin) | failed: server did not start: CUDA OOM |  |  |  |"
    assert lines[-1] == "| fa3 | fp32 | on |  | not run: fa3 kernels take fp16/bf16, not fp32 |  |  |  |  |"


def test_the_budget_stops_starting_cells_that_would_end_past_it():
    config = parse_config(["--budget-min", "1"])  # 60 s
    cells = [Cell("triton", "float32", True), Cell("fa3", "float32", True, skip="fa3 kernels take fp16/bf16"),
             Cell("triton", "bfloat16", True), Cell("triton", "bfloat16", False)]
    now = [0.0]
    started = []

    def fake_run(config, cell, log_dir, prompts):
        started.append(cell.label)
        now[0] += 25.0  # each cell takes 25 s
        return _cell_runs([(1, 2, 3, 4)] * 2)

    rows, not_run, runs = run_plan(config, cells, Path("/tmp/logs"), ["p"], run=fake_run, clock=lambda: now[0])
    # 0 s: first cell; 25 s: 25 + 25 <= 60, second; 50 s: 50 + 25 > 60, not started.
    assert started == ["triton fp32 graphs on", "triton bf16 graphs on"]
    assert [(n.cell.label, n.reason.split(" (")[0]) for n in not_run] == [
        ("fa3 fp32 graphs on", "fa3 kernels take fp16/bf16"), ("triton bf16 graphs off", "time budget")]
    assert len(rows) == 12 and set(runs) == {"triton fp32 graphs on", "triton bf16 graphs on"}


def test_a_whole_run_on_a_pretend_hopper_prints_the_table_and_writes_json(tmp_path, monkeypatch, capsys):
    import json

    from dflash_sglang.gpu_check import run

    monkeypatch.setattr(run, "cuda_device", lambda: Device("H100", (9, 0)))
    monkeypatch.setattr(run, "run_cell", lambda config, cell, log_dir, prompts: _cell_runs([(1, 2, 3, 4)] * 2))
    output = tmp_path / "check.json"
    code = run.main(["--backends", "triton,trtllm_mha", "--dtypes", "fp32", "--graphs", "on", "--num-prompts", "2",
                     "--output", str(output)])
    assert code == 1  # the pretend builtin server "did not start"
    out = capsys.readouterr().out
    assert "| triton | fp32 | on | 8 | DFLASH (ours) | 8.0 | – | 2.00× | yes (2/2) |" in out
    assert "| trtllm_mha | fp32 | on |  | not run: trtllm_mha needs SM 10.x (Blackwell), this GPU is SM 9.0 |" in out
    report = json.loads(output.read_text())
    assert report["device"] == {"name": "H100", "capability": [9, 0]}
    assert [r["greedy_equals_ar"] for r in report["results"]] == ["–", "yes (2/2)", "–", "–", "yes (2/2)", "–"]
    assert report["runs"]["triton fp32 graphs on"][0]["requests"][0]["output_ids"] == [1, 2, 3, 4]


# --- on this host --------------------------------------------------------------------------------------

def test_on_a_host_without_cuda_it_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "gpu-check: no CUDA device on this host (no NVIDIA driver or torch sees no GPU); run it on a GPU host"]
