"""`make bench`'s sweep report and plots on made-up cells (no server)."""

from __future__ import annotations

import json

import pytest

from dflash_sglang.benchmark.report import write_json
from dflash_sglang.benchmark.sweep_plot import write_sweep_plot
from dflash_sglang.benchmark.sweep_report import SweepCell, auto_checks, markdown_table, summarize_cells


def _cells() -> list[SweepCell]:
    cells = []
    for c in (1, 8):
        for r, noise in enumerate((0.9, 1.0, 1.2)):
            cells += [SweepCell.make_dummy("chain", c, r, 1.5 * noise, 2.5),
                      SweepCell.make_dummy("tree32", c, r, 1.7 * noise, 3.2),
                      SweepCell.make_dummy("builtin", c, r, 1.4 * noise, 2.5),
                      SweepCell.make_dummy("auto", c, r, (1.8 if c == 1 else 1.2) * noise, 3.0, {1: 2, 8: 6})]
    return cells


def test_rows_take_the_median_ratio_and_its_range_over_rounds():
    rows = {(r.method, r.concurrency): r for r in summarize_cells(_cells(), block_size=8)}
    chain = rows[("chain", 1)]
    assert chain.rounds == 3
    assert chain.speedup == pytest.approx(1.5) and chain.speedup_min == pytest.approx(1.35)
    assert chain.speedup_max == pytest.approx(1.8)
    assert chain.budget == 8.0 and rows[("tree32", 8)].budget == 32.0
    auto = rows[("auto", 8)]
    assert auto.widths == {1: 6, 8: 18} and auto.budget == pytest.approx((6 + 8 * 18) / 24)


def test_auto_checks_hold_auto_against_ar_the_best_fixed_budget_and_the_builtin():
    checks = auto_checks(summarize_cells(_cells(), block_size=8))
    assert checks[1] == {"ge_ar": True, "ge_0.95_best_fixed": True, "ge_builtin": True, "ge_1.2_builtin_at_c8+": None}
    assert checks[8]["ge_0.95_best_fixed"] is False and checks[8]["ge_1.2_builtin_at_c8+"] is False


def test_table_json_and_plot_are_written(tmp_path):
    rows = summarize_cells(_cells(), block_size=8)
    table = markdown_table(rows)
    assert "| 1 | auto | 1.80× (1.62–2.16) |" in table and "1:25% 8:75%" in table
    write_json(tmp_path / "sweep.json", {"rows": [r.__dict__ for r in rows]})
    assert len(json.loads((tmp_path / "sweep.json").read_text())["rows"]) == len(rows)
    write_sweep_plot(tmp_path / "sweep.png", rows, block_size=8)
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
