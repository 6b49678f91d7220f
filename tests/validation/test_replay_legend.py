"""The backtest report's plots say when one policy's line lies exactly under another's
(the same calls made), instead of hiding it under the thicker line."""

from __future__ import annotations

import math

from marketpredictor_train.validation.replay_report import legend_labels


def test_a_line_equal_to_one_drawn_before_it_says_so():
    labels = legend_labels(
        {
            "gated": [1.0, 1.01, 0.99],
            "always_retrain": [1.0, 1.01, 0.99],
            "never_retrain": [1.0, 1.02, 1.03],
            "always_up": [1.0, 1.02, 1.03],
            "yesterday": [1.0, 1.0, 1.0],
        }
    )
    assert labels == {
        "gated": "gated (train's gate)",
        "always_retrain": "always retrain (same as gated)",
        "never_retrain": "never retrain",
        "always_up": "always up (same as never retrain)",
        "yesterday": "yesterday's direction",
    }


def test_a_line_that_differs_anywhere_keeps_its_own_label_and_gaps_count_as_equal():
    nan = math.nan
    labels = legend_labels(
        {
            "gated": [nan, 0.5, 0.6],
            "always_retrain": [nan, 0.5, 0.6000001],
            "never_retrain": [nan, 0.5, 0.6],
        }
    )
    assert labels["always_retrain"] == "always retrain"
    assert labels["never_retrain"] == "never retrain (same as gated)"  # NaN where gated has
