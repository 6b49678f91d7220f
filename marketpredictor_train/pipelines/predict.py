"""`mptrain predict`: the production model (or a version, or a model file) on the latest
market data: P(up) per ticker for the last date, a chosen date, or every date."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.errors import EXIT_SUCCESS, ConfigError, DataError, MptrainError
from marketpredictor_train.pipelines.common import RunContext, data_window
from marketpredictor_train.progress import report
from marketpredictor_train.results import PredictResult

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.progress import ProgressCallback

log = structlog.get_logger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def predict(
    settings: Settings,
    *,
    version: str | None = None,
    model_file: Path | None = None,
    date: dt.date | str | None = None,
    all_dates: bool = False,
    output: Path | None = None,
    progress: ProgressCallback | None = None,
) -> PredictResult:
    """Predict with the production model, ``version`` or ``model_file`` on the data the
    settings describe: every ticker's P(up) on ``date`` (default: the last date in the
    data), or on every date with ``all_dates``; also written to ``output`` when given.

    Raises ConfigError (exit 3) for contradictory or malformed arguments or an unknown
    version; StoreError/ModelFileError (exit 1) for no production model or an unreadable
    one; DataError (exit 1) for bad data, or data that ends before ``date``."""
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.predictor import from_model_file, read_target

    run = RunContext()
    with run.bound():
        if version is not None and model_file is not None:
            raise ConfigError("--version and --model-file name two models; give one of them")
        if date is not None and all_dates:
            raise ConfigError("--date and --all-dates contradict each other; give one of them")
        day = _as_date(date)
        output_format = _output_format(output)

        model_file_, path, target = read_target(
            model_file,
            models_dir=None if model_file is not None else settings.models_dir,
            version=version,
        )
        model = from_model_file(model_file_, path, target)
        log.info(
            "Prediction started",
            target=target,
            version=model.version,
            model_type=model.model_type,
            horizon=model.horizon,
            source=settings.source,
        )
        loaded = load_ohlcv(settings, min_history=model.warmup_rows + 1, progress=progress)
        report(progress, "predict", 0, 1, f"predicting with {model.version or path.name}")
        every = model.predict(loaded.frame)
        report(progress, "predict", 1, 1, "predicted")
        if all_dates:
            chosen, day = every, None
            warnings: list[str] = []
        else:
            day = day or loaded.end
            chosen, warnings = _on_date(every, loaded, day, model.warmup_rows)
        for warning in warnings:
            log.warning(warning)
        if output is not None:
            _write(chosen, Path(output).expanduser(), output_format)
        log.info(
            "Predictions made",
            rows=chosen.height,
            date=None if day is None else day.isoformat(),
            up=int((chosen.get_column("prediction") == "up").sum()),
            output=None if output is None else str(output),
        )
        return PredictResult(
            status="predicted",
            exit_code=EXIT_SUCCESS,
            target=target,
            version=model.version,
            model_path=str(path),
            model_type=model.model_type,
            horizon=model.horizon,
            decision_threshold=model.decision_threshold,
            date=None if day is None else day.isoformat(),
            all_dates=all_dates,
            predictions=chosen,
            output=None if output is None else str(output),
            data_window=data_window(loaded, {}),
            dropped_tickers=dict(loaded.dropped),
            duration_s=run.elapsed(),
            run_id=run.run_id,
            warnings=tuple(warnings),
        )


def _as_date(value: dt.date | str | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"Invalid date {value!r}: expected YYYY-MM-DD (e.g. 2025-01-31)") from exc


def _output_format(output: Path | None) -> str | None:
    if output is None:
        return None
    fmt = OUTPUT_FORMATS.get(Path(output).suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"Cannot write predictions to {output}: the file name must end in .csv or .parquet",
            hint="e.g. --output predictions.csv",
        )
    return fmt


def _on_date(
    every: pl.DataFrame, loaded: LoadedData, day: dt.date, warmup: int
) -> tuple[pl.DataFrame, list[str]]:
    """The predictions of ``day``, and a warning for each ticker without one."""
    import polars as pl

    if day > loaded.end:
        raise DataError(
            f"The data ends {loaded.end}, before the requested date {day}",
            hint="Ask for an earlier --date, or get newer data (`mptrain data fetch`, or run "
            "without --offline).",
        )
    chosen = every.filter(pl.col("date") == day)
    if chosen.height == 0:
        raise DataError(
            f"No predictions for {day}: no ticker has a bar with complete features that day",
            hint=f"The data has bars from {loaded.start} to {loaded.end}; is {day} a trading "
            f"day? The first {warmup} bars of each ticker have no prediction (indicator "
            "warm-up).",
        )
    have = set(chosen.get_column("ticker").to_list())
    last = {
        ticker: latest
        for ticker, latest in loaded.frame.group_by("ticker").agg(pl.col("date").max()).iter_rows()
    }
    warnings = []
    for ticker in loaded.tickers:
        if ticker in have:
            continue
        if last[ticker] < day:
            why = f"its data ends {last[ticker]}"
        else:
            why = "no bar with complete features that day"
        warnings.append(f"No prediction for {ticker} on {day}: {why}")
    return chosen, warnings


def _write(frame: pl.DataFrame, path: Path, fmt: str | None) -> None:
    from marketpredictor_train.fileio import atomic_write_bytes, atomic_write_text

    try:
        if fmt == "csv":
            atomic_write_text(path, frame.write_csv())
            return
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise MptrainError(
            f"Cannot write the predictions to {path}: {exc.strerror or exc}"
        ) from exc
