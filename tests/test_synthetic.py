"""The shipped synthetic OHLCV generator: seeded, and valid by every input check."""

from __future__ import annotations

from marketpredictor_train.data import validate_ohlcv
from marketpredictor_train.testing.synthetic import synthetic_ohlcv


def test_synthetic_bars_pass_every_input_check_and_repeat_under_a_seed():
    frame = synthetic_ohlcv(12, 260, seed=3)
    assert frame.height == 12 * 260
    assert frame["ticker"].unique().sort().to_list() == [f"T{i:03d}" for i in range(12)]
    validate_ohlcv(frame)  # raises DataError on any bad bar
    assert frame.equals(synthetic_ohlcv(12, 260, seed=3))
    assert not frame.equals(synthetic_ohlcv(12, 260, seed=4))
