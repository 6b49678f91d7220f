"""Which tickers a run uses when the user names none: the documented default universes."""

from __future__ import annotations

# A few dozen liquid US large caps across sectors, in Yahoo's spelling (BRK-B, not BRK.B).
# Liquid names keep Yahoo's bars clean and the universe stable from week to week.
DEFAULT_UNIVERSE: tuple[str, ...] = (
    "AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "BRK-B", "JPM", "V",
    "MA", "BAC", "WFC", "JNJ", "UNH", "PFE", "MRK", "ABBV", "PG", "KO",
    "PEP", "WMT", "COST", "HD", "MCD", "NKE", "DIS", "XOM", "CVX", "CSCO",
    "INTC", "ORCL", "IBM", "ADBE", "CRM", "QCOM", "TXN", "NFLX", "T", "VZ",
)  # fmt: skip

# The sample's tickers with enough history to train on; its FB series (2012-2013) is too
# short for the indicators and a six-month backtest, so it is only used when asked for.
SAMPLE_TICKERS: tuple[str, ...] = ("AAPL", "GOOG", "IBM", "MSFT")
