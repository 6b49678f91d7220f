"""The yahoo source (daily bars through yfinance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpredictor_train.errors import DataError

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings
    from marketpredictor_train.progress import ProgressCallback


def load_yahoo(
    settings: Settings, *, progress: ProgressCallback | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    # Replaced by the batched, cached downloader in the next change.
    raise DataError(
        "Dataset is empty after build_dataset: the yahoo source is not available yet.",
        hint="Use --source sample or --source PATH.",
    )
