"""What the pipelines share: a run's id and clock, the data and modelling table every
training-like run goes through, the champion's score on a challenger's rows, and the
validation report's folder and files."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import MptrainError
from marketpredictor_train.progress import StepTimer, report
from marketpredictor_train.store.names import REPORTS_DIR_NAME

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.features import FeatureSpec
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.validation.backtest import Comparison, ValidationReport

log = structlog.get_logger(__name__)


@dataclass
class RunContext:
    """One command's run: its id (bound to every log line), its clock and step timings."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.perf_counter)
    timer: StepTimer = field(default_factory=StepTimer)

    @contextmanager
    def bound(self) -> Iterator[RunContext]:
        with structlog.contextvars.bound_contextvars(run_id=self.run_id):
            yield self

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def model_type_and_device(settings: Settings) -> tuple[type[ModelType], str]:
    """The model type (unknown: ConfigError, exit 3, before any work) and the device it
    fits on, resolved once per run."""
    from marketpredictor_train.models.device import resolve_device
    from marketpredictor_train.models.registry import get_model_type

    model_cls = get_model_type(settings.model_type)
    return model_cls, resolve_device(settings.device, model_cls)


def feature_spec(settings: Settings) -> FeatureSpec:
    """The feature spec of this run: the `features` setting, or the built-in default."""
    from marketpredictor_train.features import FeatureSpec, default_spec

    if settings.features is None:
        return default_spec()
    return FeatureSpec.from_dict({"indicators": settings.features})


def prepare_data(
    settings: Settings, timer: StepTimer, progress: ProgressCallback | None
) -> tuple[LoadedData, Dataset]:
    """Load the market data and build the guarded modelling table (train | purge |
    backtest); `train` and `optimize` both get their rows here, so they see the same."""
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset import MIN_BACKTEST_ROWS, build_dataset
    from marketpredictor_train.features import warmup_rows

    spec = feature_spec(settings)
    with timer("data"):
        loaded = load_ohlcv(
            settings,
            min_history=warmup_rows(spec) + settings.horizon + MIN_BACKTEST_ROWS,
            progress=progress,
        )
    log.info(
        "Dataset loaded",
        rows=loaded.frame.height,
        tickers=len(loaded.tickers),
        start=str(loaded.start),
        end=str(loaded.end),
    )
    with timer("features"):
        report(progress, "features", 0, 1, "building features")
        dataset = build_dataset(
            loaded.frame,
            spec,
            horizon=settings.horizon,
            dead_band=settings.dead_band,
            backtest_months=settings.backtest_months,
            purge_gap=settings.purge_gap,
        )
        report(progress, "features", 1, 1, "features built")
    log.info(
        "Dataset built",
        n_train=dataset.train.height,
        n_test=dataset.backtest.height,
        n_features=len(dataset.feature_columns),
        **dataset.window.to_dict(),
    )
    return loaded, dataset


def data_window(loaded: LoadedData, window: dict[str, Any]) -> dict[str, Any]:
    """The data a run used: source, tickers, first and last date, and its split."""
    return {
        "source": loaded.source,
        "tickers": list(loaded.tickers),
        "start": loaded.start.isoformat(),
        "end": loaded.end.isoformat(),
        **window,
    }


@dataclass(frozen=True)
class ChampionScore:
    """Production scored on a challenger's rows; ``comparison`` is None when there is no
    production model, it is the model validated, or it could not be read or scored."""

    version: str | None
    comparison: Comparison | None
    warnings: tuple[str, ...] = ()


def score_champion(
    settings: Settings,
    store: ModelStore,
    ohlcv: pl.DataFrame,
    rows: pl.DataFrame,
    proba: np.ndarray,
    *,
    horizon: int,
    challenger_version: str | None = None,
) -> ChampionScore:
    """The production model on exactly the challenger's ``rows``. A production model that
    cannot be read or scored is a warning, never a failed run: the thresholds decide."""
    from marketpredictor_train.validation.backtest import compare_with_production

    try:
        production = store.load_production()
    except MptrainError as exc:
        return ChampionScore(
            None, None, (f"The production model could not be read ({exc.message})",)
        )
    if production is None:
        log.info("No production model yet; thresholds alone decide")
        return ChampionScore(None, None)
    version = production.manifest.get("version")
    if challenger_version is not None and version == challenger_version:
        return ChampionScore(version, None)
    try:
        comparison = compare_with_production(
            production,
            ohlcv,
            rows,
            proba,
            primary_metric=settings.primary_metric,
            horizon=horizon,
            cost_per_trade=settings.cost_per_trade,
            seed=settings.seed,
        )
    except MptrainError as exc:
        return ChampionScore(
            version, None, (f"The production model could not be scored ({exc.message})",)
        )
    log.info(
        "Production model scored on the same backtest rows",
        version=version,
        rows=comparison.n_common,
        metrics={k: comparison.production[k] for k in ("accuracy", "precision", "recall", "f1")},
    )
    return ChampionScore(version, comparison, comparison.warnings)


def run_report_folder(base: Path, kind: str, run_id: str, label: str | None = None) -> Path:
    """``base/<kind>_<UTC time>[_<label>]_<run>/``: one run's report folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    return base / "_".join(p for p in (kind, stamp, label, run_id) if p)


def logs_reports_dir(settings: Settings) -> Path:
    """logs/reports/: reports of runs that belong to no saved version of this store."""
    return Path(settings.logs_dir) / REPORTS_DIR_NAME


def write_validation_report(
    report_: ValidationReport, folder: Path, *, title: str, decision: dict[str, Any]
) -> tuple[Path | None, list[Path], str | None]:
    """Write the report; returns (folder, files, warning). A report that cannot be written
    is a warning: the run's outcome (a saved or promoted model) stands."""
    from marketpredictor_train.validation.report import write_report

    try:
        files = write_report(report_, folder, title=title, decision=decision)
    except OSError as exc:
        warning = f"The validation report could not be written to {folder}: {exc}"
        log.warning(warning)
        return None, [], warning
    log.info("Validation report written", path=str(folder / "report.html"))
    return folder, files, None
