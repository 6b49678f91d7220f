"""What the pipelines share: a run's id and clock, the data and modelling table every
training-like run goes through, the champion's score on a challenger's rows, and the
validation report's folder and files."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.dataset.table import MIN_BACKTEST_ROWS
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
    from marketpredictor_train.models.threads import passive_openmp

    passive_openmp()  # before the model library loads
    model_cls = get_model_type(settings.model_type)
    return model_cls, resolve_device(settings.device, model_cls)


# What scoring a backtest and drawing its report import: seconds of imports (the block
# bootstrap brings statsmodels) that a run can do while it fits.
EVALUATION_MODULES = ("arch.bootstrap", "scipy.stats")
REPORT_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def import_in_background(modules: Sequence[str], *, after: float = 0.0) -> None:
    """Import ``modules`` in a daemon thread, starting ``after`` seconds from now. A later
    import of one waits for it under Python's import lock; a failure here is left for that
    import to raise. Model fits release the GIL, so the imports overlap them."""
    import importlib
    import threading

    def work() -> None:
        time.sleep(after)
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the real import reports it
                return

    threading.Thread(target=work, name="mptrain-imports", daemon=True).start()


def check_source(settings: Settings) -> None:
    """A --source path that does not exist: ConfigError (exit 3), found before a run
    opens its MLflow run (whose first use creates a database) or loads anything."""
    from marketpredictor_train.data.files import resolve_path
    from marketpredictor_train.data.sources import SOURCE_FILES, source_kind

    if source_kind(settings.source) == SOURCE_FILES:
        resolve_path(settings.source)


@contextmanager
def fitting_threads(settings: Settings, dataset: Dataset) -> Iterator[int]:
    """Fits inside the block use --threads, or the cores available to this process,
    capped by the training rows (small data gains nothing from more threads)."""
    from marketpredictor_train.models.threads import available_cpus, choose_threads, using_threads

    threads = choose_threads(settings.threads, dataset.train.height)
    # This generator's locals live as long as the block: they must not keep the dataset
    # (and its training features) alive while the model fits.
    del dataset
    log.info("Fit threads", threads=threads, available_cores=available_cpus())
    with using_threads(threads):
        yield threads


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

    spec = feature_spec(settings)
    with timer("data"):
        loaded = load_ohlcv(settings, min_history=min_history(settings, spec), progress=progress)
    log.info(
        "Dataset loaded",
        rows=loaded.frame.height,
        tickers=len(loaded.tickers),
        start=str(loaded.start),
        end=str(loaded.end),
    )
    return loaded, build_run_dataset(settings, loaded, spec, timer, progress)


def min_history(settings: Settings, spec: FeatureSpec) -> int:
    """Rows a ticker needs in the period to take part: the indicators' warm-up, the label
    horizon and a minimal backtest."""
    from marketpredictor_train.features import warmup_rows

    return warmup_rows(spec) + settings.horizon + MIN_BACKTEST_ROWS


def build_run_dataset(
    settings: Settings,
    loaded: LoadedData,
    spec: FeatureSpec,
    timer: StepTimer,
    progress: ProgressCallback | None,
    *,
    check_lookahead: bool = True,
) -> Dataset:
    """The guarded modelling table (train | purge | backtest) of the loaded data, its
    training features in the dtype the model type fits on."""
    from marketpredictor_train.dataset import build_dataset
    from marketpredictor_train.models.registry import get_model_type

    with timer("features"):
        report(progress, "features", 0, 1, "building features")
        dataset = build_dataset(
            loaded.frame,
            spec,
            horizon=settings.horizon,
            dead_band=settings.dead_band,
            backtest_months=settings.backtest_months,
            purge_gap=settings.purge_gap,
            membership=membership(settings),
            check_lookahead=check_lookahead,
            train_dtype=get_model_type(settings.model_type).feature_dtype,
        )
        report(progress, "features", 1, 1, "features built")
    log.info(
        "Dataset built",
        n_train=dataset.train.height,
        n_test=dataset.backtest.height,
        n_features=len(dataset.feature_columns),
        **dataset.window.to_dict(),
    )
    return dataset


def membership(settings: Settings) -> pl.DataFrame | None:
    """The index membership of --universe, or None (a fixed ticker list)."""
    if settings.universe is None:
        return None
    from marketpredictor_train.data.membership import read_membership

    return read_membership(settings.universe)


SURVIVORSHIP_NOTE = (
    "Survivorship: the tickers are a fixed list chosen today, so stocks that were delisted "
    "or left the index during the data's years are missing, which biases the historical "
    "up-rate (and always-up) upward. Give the index membership with --universe FILE "
    "(ticker, start, end) to score each date on the stocks of that date."
)


def universe_notes(settings: Settings) -> tuple[str, ...]:
    """What the report says about the universe's survivorship bias."""
    if settings.universe is not None:
        return (
            f"Universe: rows outside the index membership in {settings.universe} are "
            "left out of training and backtest.",
        )
    return (SURVIVORSHIP_NOTE,)


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
    rows_spec_hash: str | None = None,
) -> ChampionScore:
    """The production model on the challenger's ``rows`` that it never learned from: those
    after its own training data plus the purge gap (a champion scored on rows it trained
    on would look unbeatable). With fewer than MIN_BACKTEST_ROWS such rows its figures are
    shown but marked not comparable, and the gate leaves it out. A production model that
    cannot be read or scored is a warning, never a failed run. ``rows_spec_hash``: the
    feature spec ``rows`` carry, reused when production's is the same."""
    from marketpredictor_train.validation.backtest import score_model_file

    try:
        production = store.load_production()
    except MptrainError as exc:
        return ChampionScore(
            None, None, (f"The production model could not be read ({exc.message})",)
        )
    if production is None:
        log.info("No production model yet; the thresholds and the skill gate decide")
        return ChampionScore(None, None)
    version = production.manifest.get("version")
    if challenger_version is not None and version == challenger_version:
        return ChampionScore(version, None)
    return champion_on_rows(
        settings,
        production.manifest,
        lambda unseen: score_model_file(production, ohlcv, unseen, rows_spec_hash=rows_spec_hash),
        ohlcv,
        rows,
        proba,
        horizon=horizon,
    )


# What validation reads of the prices when no model has to rebuild its features from
# them: the trading view's and the champion's price context (close-to-close returns) and
# the market calendar.
SCORING_PRICE_COLUMNS = ("date", "ticker", "close")


def prices_for_validation(
    loaded: LoadedData, dataset: Dataset, store: ModelStore, horizon: int
) -> LoadedData:
    """``loaded`` with only what validating this run's model reads of its prices. All of
    them when the production model rebuilds its features from them (its feature spec is
    not this run's) or cannot be read (validation then warns without scoring it). Else
    SCORING_PRICE_COLUMNS, from the backtest start (or the production model's last
    training date, if earlier: its unseen rows are counted on the market calendar from
    there) and ``horizon`` rows before: the trading view's and the champion's price
    context. A train holds this instead of the prices while it fits (500 tickers x 10
    years: 2 MB instead of 73)."""
    from marketpredictor_train.validation.backtest import rows_from

    if not set(SCORING_PRICE_COLUMNS) <= set(loaded.frame.columns):
        return loaded
    try:
        production = store.production()
    except MptrainError:
        return loaded
    first = dataset.window.backtest_start
    if production is not None:
        manifest = production.manifest
        same_features = manifest.get("feature_spec_hash") == dataset.spec.hash and set(
            manifest.get("feature_columns") or ()
        ) <= set(dataset.backtest.columns)
        if not same_features:
            return loaded
        train_end = (manifest.get("data_window") or {}).get("train_end")
        if train_end:
            try:
                first = min(first, date.fromisoformat(str(train_end)))
            except ValueError:
                return loaded
    prices = rows_from(loaded.frame.select(SCORING_PRICE_COLUMNS), first, horizon)
    return dataclasses.replace(loaded, frame=prices)


def champion_on_rows(  # noqa: PLR0913 - the champion, the challenger's rows, and how to score
    settings: Settings,
    manifest: dict[str, Any],
    score: Callable[[pl.DataFrame], tuple[np.ndarray, np.ndarray]],
    ohlcv: pl.DataFrame,
    rows: pl.DataFrame,
    proba: np.ndarray,
    *,
    horizon: int,
) -> ChampionScore:
    """The champion described by ``manifest`` (version, model type, label, data window)
    against the challenger's ``proba`` on those of ``rows`` it never learned from;
    ``score(rows)`` gives the row positions the champion scored and its P(up) there (a
    stored model rebuilds its features; a model in memory may look them up)."""
    from marketpredictor_train.validation.backtest import compare_scored

    version = manifest.get("version")
    unseen, note = _unseen_by(manifest, ohlcv, rows, settings.embargo_days)
    if not unseen.any():
        return ChampionScore(version, None, (f"Production {version} is not compared: {note}",))
    try:
        unseen_rows = rows.filter(unseen)
        comparison = compare_scored(
            manifest,
            score(unseen_rows),
            ohlcv,
            unseen_rows,
            proba[unseen],
            primary_metric=settings.primary_metric,
            horizon=horizon,
            cost_per_trade=settings.cost_per_trade,
            seed=settings.seed,
            level=settings.gate_level,
        )
    except MptrainError as exc:
        return ChampionScore(
            version, None, (f"The production model could not be scored ({exc.message})",)
        )
    warnings = list(comparison.warnings)
    if comparison.n_common < MIN_BACKTEST_ROWS:
        note = (
            f"only {comparison.n_common} backtest rows come after production {version}'s "
            f"own training data ({note}); its figures are not comparable and the thresholds "
            "and the skill gate decide"
        )
        comparison = dataclasses.replace(comparison, comparable=False, note=note)
        warnings.append(f"Production {version} is not compared: {note}")
    elif note:
        comparison = dataclasses.replace(comparison, note=note)
    log.info(
        "Production model scored on the same backtest rows",
        version=version,
        rows=comparison.n_common,
        comparable=comparison.comparable,
        metrics={k: comparison.production[k] for k in ("accuracy", "precision", "recall", "f1")},
    )
    return ChampionScore(version, comparison, tuple(warnings))


def _unseen_by(
    manifest: dict[str, Any], ohlcv: pl.DataFrame, rows: pl.DataFrame, embargo_days: int
) -> tuple[np.ndarray, str]:
    """Which of ``rows`` come after the model's own training data plus its purge gap, and
    a note when some do not."""
    import numpy as np

    from marketpredictor_train.dataset.guards import first_unseen_date

    train_end = (manifest.get("data_window") or {}).get("train_end")
    if not train_end:
        return np.ones(rows.height, dtype=bool), (
            "its manifest does not say which dates it learned from"
        )
    horizon = int((manifest.get("label") or {}).get("horizon", 1))
    first = first_unseen_date(ohlcv, date.fromisoformat(str(train_end)), horizon + embargo_days)
    if first is None:
        return np.zeros(rows.height, dtype=bool), (
            f"it learned from data up to {train_end}, after the whole backtest"
        )
    unseen = (rows.get_column("date") >= first).to_numpy()
    if unseen.all():
        return unseen, ""
    return unseen, f"it learned from data up to {train_end}; scored from {first}"


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
