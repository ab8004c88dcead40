"""Issue 13: a one-minute soak of our DFLASH server (the suite's, strict idle memory check) at c=16 with every
kind of request, passing the soak's own criteria: no unexpected error, AR's tokens on every full greedy
request, no KV in use at idle, RSS growth under 5 % over the proportional window. The JSON and PNG go to
the test's tmp dir (its path is printed). One minute since 2026-12-01 (three, then two, then 1.5 before): `make
test` had reached 25 minutes; the 30-minute run is `make soak`."""

from __future__ import annotations

import pytest

from dflash_sglang.soak.cli import summary, write_outputs
from dflash_sglang.soak.run import AR_ARGS, SoakConfig, run_soak
from dflash_sglang.soak.traffic import INVALID, KINDS

pytestmark = pytest.mark.e2e

MINUTES, GREEDY_POOL = 1.0, 16


def test_short_soak(ar_server, dflash_server, tmp_path):
    """The session's AR server runs the soak's oracle flags (AR_ARGS: no overlap scheduler, which counts
    penalties one token late)."""
    assert tuple(ar_server.argv[-len(AR_ARGS):]) == AR_ARGS, ar_server.argv
    config = SoakConfig(minutes=MINUTES, greedy_pool=GREEDY_POOL, output=tmp_path / "report.json",
                        log_dir=tmp_path / "logs")
    report = run_soak(config, ar=ar_server, dflash=dflash_server)
    png = write_outputs(config, report)
    print(summary(report) + f"\nreport: {config.output}\nplot: {png}")
    assert report["failures"] == []
    # the mix really ran: every kind, streamed and not, refused requests refused, greedy requests checked
    assert set(report["requests"]["by_kind"]) == set(KINDS)
    assert 0 < report["requests"]["streamed"] < report["requests"]["total"]
    assert report["errors"]["expected"].get(f"{INVALID}:http_400", 0) > 0
    assert report["greedy"]["checked"] >= GREEDY_POOL // 2
    assert len(report["rss"]["samples"]) >= MINUTES * 60 / 10
