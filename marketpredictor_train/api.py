"""The public library API, and the only door the CLI goes through: each function takes
Settings and returns a result value (see :mod:`marketpredictor_train.results`).

Importing this module is cheap: each function imports its pipeline when called, so a
program (or `mptrain --help`) pays only for what it uses.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketpredictor_train.progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    from rich.console import Console

    from marketpredictor_train.config import Settings
    from marketpredictor_train.predictor import LoadedModel
    from marketpredictor_train.results import (
        BacktestResult,
        DataCheckResult,
        DataFetchResult,
        DataInfoResult,
        ModelsListing,
        OptimizeResult,
        PredictResult,
        PruneResult,
        RollbackResult,
        TrainResult,
        ValidateResult,
    )

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "backtest",
    "check_data",
    "configure_logging",
    "data_info",
    "fetch_data",
    "list_models",
    "load_model",
    "optimize",
    "predict",
    "prune_models",
    "rollback",
    "train",
    "validate",
    "version_names",
    "write_json",
]


def train(settings: Settings, *, progress: ProgressCallback | None = None) -> TrainResult:
    """Train, validate and maybe promote one model (`mptrain train`)."""
    from marketpredictor_train.pipelines.train import train as run

    return run(settings, progress=progress)


def validate(
    settings: Settings,
    *,
    version: str | None = None,
    model_file: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ValidateResult:
    """Backtest production, a version or a model file on the latest data (`mptrain validate`)."""
    from marketpredictor_train.pipelines.validate import validate as run

    return run(settings, version=version, model_file=model_file, progress=progress)


def optimize(settings: Settings, *, progress: ProgressCallback | None = None) -> OptimizeResult:
    """Tune hyperparameters and write best_hyperparameters.json (`mptrain optimize`)."""
    from marketpredictor_train.pipelines.optimize import optimize as run

    return run(settings, progress=progress)


def backtest(
    settings: Settings,
    *,
    start: dt.date | str | None = None,
    every: str = "1w",
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Replay the retrain-and-promote policy every ``every`` (1d..3m) from ``start``
    (default: two years before the last date), against always promoting, never
    retraining, always up and yesterday's direction (`mptrain backtest`). The steps' fits
    run in ``workers`` processes (default: the usable cores) and are cached in
    ``cache_dir`` (default: beside the model store); the store is never written."""
    from marketpredictor_train.pipelines.backtest import backtest as run

    return run(
        settings,
        start=start,
        every=every,
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
    )


def load_model(
    path: str | Path | None = None,
    *,
    models_dir: str | Path | None = None,
    version: str | None = None,
) -> LoadedModel:
    """A verified model ready to predict: the file at ``path``, or the production model
    (or ``version``) of the store in ``models_dir`` (default ./models); see
    :func:`marketpredictor_train.predictor.load_model`."""
    from marketpredictor_train.predictor import load_model as load

    return load(path, models_dir=models_dir, version=version)


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
    """P(up) per ticker from the production model, a version or a model file, on the
    latest date of the configured data, or ``date``, or every date (`mptrain predict`);
    ``output`` (.csv or .parquet) receives the predictions too."""
    from marketpredictor_train.pipelines.predict import predict as run

    return run(
        settings,
        version=version,
        model_file=model_file,
        date=date,
        all_dates=all_dates,
        output=output,
        progress=progress,
    )


def rollback(
    settings: Settings, version: str | None = None, *, reason: str | None = None
) -> RollbackResult:
    """Make ``version`` (default: the previous production model) production again."""
    from marketpredictor_train.pipelines.store_ops import rollback as run

    return run(settings, version, reason=reason)


def list_models(settings: Settings, *, prune: int | None = None) -> ModelsListing:
    """Versions, production and history (`mptrain models-list`); ``prune`` first if given."""
    from marketpredictor_train.pipelines.store_ops import list_models as run

    return run(settings, prune=prune)


def prune_models(settings: Settings, keep: int) -> PruneResult:
    """Keep the newest ``keep`` non-production versions and delete the rest."""
    from marketpredictor_train.pipelines.store_ops import prune_models as run

    return run(settings, keep)


def version_names(models_dir: Path) -> list[str]:
    """Versions in a store folder, newest first, from the folder listing alone."""
    from marketpredictor_train.pipelines.store_ops import version_names as run

    return run(models_dir)


def fetch_data(
    settings: Settings, *, full: bool = False, progress: ProgressCallback | None = None
) -> DataFetchResult:
    """Fill or refresh the Yahoo market-data cache (`mptrain data fetch`)."""
    from marketpredictor_train.pipelines.data_ops import fetch_data as run

    return run(settings, full=full, progress=progress)


def data_info(settings: Settings, *, verify: bool = False) -> DataInfoResult:
    """What the market-data cache holds, without the network (`mptrain data info`)."""
    from marketpredictor_train.pipelines.data_ops import data_info as run

    return run(settings, verify=verify)


def check_data(
    settings: Settings, *, min_history: int = 0, progress: ProgressCallback | None = None
) -> DataCheckResult:
    """Load a source through every input check, without training (`mptrain data check`)."""
    from marketpredictor_train.pipelines.data_ops import check_data as run

    return run(settings, min_history=min_history, progress=progress)


def configure_logging(settings: Settings, console: Console | None = None) -> None:
    """Console lines for people (on ``console``) and JSON lines into logs/training.log, at
    the settings' level (WARNING with ``quiet``)."""
    from marketpredictor_train.logconfig import configure_logging as configure

    configure(
        level=settings.log_level if not settings.quiet else "WARNING",
        logs_dir=settings.logs_dir,
        console=console,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )


def check_output_json(path: Path, models_dir: Path | None = None) -> None:
    """Refuse (exit 3) an ``--output-json`` path that is a file of the model store in
    ``models_dir`` (or of the store the path lies in), before anything runs."""
    from marketpredictor_train.store.names import check_result_path

    check_result_path(path, models_dir)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON document atomically (a reader never sees half a file)."""
    from marketpredictor_train.fileio import atomic_write_text

    atomic_write_text(Path(path).expanduser(), json.dumps(document, indent=2, default=str) + "\n")
