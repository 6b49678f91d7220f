"""The console summary of `mptrain train` ends with the total time and the stage times."""

from __future__ import annotations

from marketpredictor_train.cli._render import timing_line


def test_the_timing_line_lists_every_stage_in_run_order():
    line = timing_line(16.14, {"data": 0.31, "features": 1.12, "fit": 7.5, "tracking": 0.04})
    assert line == "Total 16.1 s: data 0.3 s, features 1.1 s, fit 7.5 s, tracking 0.0 s"


def test_a_run_without_stages_shows_the_total_alone():
    assert timing_line(0.2, {}) == "Total 0.2 s"
