"""`mptrain train`: data -> guarded modelling table -> parameters -> fit -> backtest ->
champion vs challenger -> the gate's decision -> save, promote, report, track."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import (
    EXIT_SUCCESS,
    EXIT_VALIDATION_FAILED,
    HookError,
    MptrainError,
    TrainingError,
)
from marketpredictor_train.pipelines.common import (
    EVALUATION_MODULES,
    REPORT_MODULES,
    ChampionScore,
    RunContext,
    check_source,
    data_window,
    fitting_threads,
    import_in_background,
    logs_reports_dir,
    model_type_and_device,
    prepare_data,
    prices_for_validation,
    run_report_folder,
    score_champion,
    universe_notes,
    write_validation_report,
)
from marketpredictor_train.progress import report
from marketpredictor_train.results import TrainResult
from marketpredictor_train.store.names import REPORTS_DIR_NAME

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.dataset.table import FrameBatches
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.models.calibration import Calibrator
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.store import ModelStore, PromotionRecord
    from marketpredictor_train.tracking import TrainingRun
    from marketpredictor_train.tuning.cv import Fold
    from marketpredictor_train.validation.backtest import (
        Comparison,
        SkillEvidence,
        ValidationReport,
    )
    from marketpredictor_train.validation.gate import GateDecision

log = structlog.get_logger(__name__)

MANIFEST_FORMAT = 1

METRICS_OF_VALIDATED = "the saved model, on the backtest"
METRICS_OF_REFIT = (
    "the validated model before the refit; the saved model was refit on every row, "
    "backtest included, and has no out-of-sample metrics of its own"
)
METRICS_OF_SKIPPED = "none: validation was skipped"
REFIT_NOTE = (
    "Refit (--refit): the model that passed the gate was refit with the same parameters on "
    "the training and backtest rows, and that refit model was saved. The metrics in this "
    "report are those of the validated model before the refit, not of the saved model."
)


@dataclass(frozen=True)
class _Validation:
    """What the validation stage concluded; ``report`` is None with --skip-validation."""

    report: ValidationReport | None
    champion: ChampionScore
    decision: GateDecision

    @property
    def metrics(self) -> dict[str, Any]:
        return {} if self.report is None else dict(self.report.metrics)


@dataclass(frozen=True)
class _Saved:
    version: str | None
    model_path: str | None
    record: PromotionRecord | None
    decision: GateDecision

    @property
    def promoted(self) -> bool:
        return self.record is not None


def _preflight(settings: Settings) -> tuple[type[ModelType], str]:
    """What can fail without data, checked before any MLflow work, data or fit (exit 3 for
    an unknown model type, a bad device, a --source path that does not exist or a bad
    key; exit 1 for a store that cannot be written): the model type and the device. The
    model library then starts loading in the background, while the data loads."""
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.store.signing import check_keys

    model_cls, device = model_type_and_device(settings)
    check_source(settings)
    check_keys()
    if not settings.dry_run:
        ModelStore(settings.models_dir).check_writable()
    import_in_background(model_cls.library_modules)
    return model_cls, device


def train(settings: Settings, *, progress: ProgressCallback | None = None) -> TrainResult:
    """Train, validate and maybe promote one model; see TrainResult for what comes back.

    Raises MptrainError subclasses (exit 1 or 3) when the run cannot complete; a model
    that trains but is not promoted is a result (exit code 2), not an exception."""
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.tracking import report_metrics, training_run
    from marketpredictor_train.tuning import choose_params

    run = RunContext()
    timer = run.timer
    with run.bound(), ExitStack() as stack:
        model_cls, device = _preflight(settings)
        # The MLflow run spans the rest of the train; an error that stops it closes it FAILED.
        # opened once the fits' matrices are built (see _after_matrices)
        tracking = stack.enter_context(training_run(settings, run.run_id, start_later=True))
        log.info(
            "Training started",
            model_type=model_cls.name,
            source=settings.source,
            period=settings.period,
            horizon=settings.horizon,
            device=device,
        )
        loaded, dataset = prepare_data(settings, timer, progress)
        store = ModelStore(settings.models_dir)
        # Rebinding `loaded` lets the price columns validation does not read go now.
        loaded = prices_for_validation(loaded, dataset, store, settings.horizon)
        stack.enter_context(fitting_threads(settings, dataset))
        params, param_source = choose_params(
            settings, model_cls, dataset, device=device, timer=timer, progress=progress
        )
        with timer("fit"):
            # Rebinding `dataset` lets its training features go while the model fits.
            rows, dataset = _training_rows(settings, model_cls, dataset)
            model, calibrator = _fit_on(
                settings,
                model_cls,
                params,
                device,
                dataset,
                rows,
                progress,
                prepared=lambda: _after_matrices(settings, tracking),
            )

        with timer("validate"):
            validation = _validate(settings, model, calibrator, dataset, loaded, store)
        if validation.report is None:
            log.info("Training complete - validation skipped")
        else:
            metrics = validation.metrics
            log.info(
                f"Training complete - Accuracy: {metrics['accuracy']:.2%}",
                metrics={k: metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
            )

        # --refit: the model that passed the gate is refit on every row and that one is
        # saved; only when it is about to be promoted, so an unpromoted version is always
        # the validated model itself.
        refit = settings.refit and validation.decision.promote and not settings.dry_run
        refit_rows = refit_train_end = None
        if refit:
            with timer("refit"):
                model, refit_rows, refit_train_end = _refit(
                    model_cls, params, device, settings, dataset
                )
        manifest = _manifest(settings, model, dataset, loaded, validation, run.run_id, calibrator)
        manifest.update(
            _manifest_validation(
                validation,
                data_window=manifest["data_window"],
                refit_rows=refit_rows,
                refit_train_end=refit_train_end,
            )
        )
        with timer("store"):
            saved = _save_and_promote(settings, store, manifest, model, validation, tracking)
        _log_outcome(settings, saved)

        status = _status(settings, saved, skipped=validation.report is None)
        exit_code = (
            EXIT_SUCCESS
            if saved.decision.passed or saved.promoted or validation.report is None
            else EXIT_VALIDATION_FAILED
        )
        warnings = [] if validation.report is None else list(validation.report.warnings)
        report_dir, report_files, report_warning = _write_report(
            settings, validation, saved, run_id=run.run_id, status=status, refit=refit
        )
        if report_warning:
            warnings.append(report_warning)

        with timer("tracking"):
            # Also points the registry's alias at production, before the post-promotion
            # command runs (it may reload the service from models:/<name>@<alias>).
            tracked = tracking.finish(
                store,
                params=model.params,
                metrics=validation.metrics,
                n_features=len(dataset.feature_columns),
                tickers=loaded.tickers,
                status=status,
                promoted=saved.promoted,
                version=saved.version,
                reason=saved.decision.reason,
                extra_metrics={**report_metrics(validation.report), "refit": float(refit)},
                artifacts=report_files,
            )
            warnings.extend(tracked.warnings)

        hook_failure = _after_promotion(settings, saved.record)
        if hook_failure:
            # The promotion stands; the run still fails so a scheduler notices.
            warnings.append(hook_failure)
            exit_code = HookError.exit_code

        comparison = validation.champion.comparison
        return TrainResult(
            status=status,
            exit_code=exit_code,
            promoted=saved.promoted,
            passed_validation=saved.decision.passed,
            reason=saved.decision.reason,
            version=saved.version,
            model_path=saved.model_path,
            model_type=model_cls.name,
            params=dict(model.params),
            param_source=param_source,
            metrics=validation.metrics,
            production_version=validation.champion.version,
            production_metrics=None if comparison is None else dict(comparison.production),
            thresholds=dict(settings.thresholds),
            primary_metric=settings.primary_metric,
            forced=saved.decision.forced and saved.promoted,
            dry_run=settings.dry_run,
            n_train=dataset.train.height,
            n_test=dataset.backtest.height,
            n_features=len(dataset.feature_columns),
            data_window=data_window(loaded, dataset.window.to_dict()),
            dropped_tickers=dict(loaded.dropped),
            timings=timer.timings,
            duration_s=run.elapsed(),
            run_id=run.run_id,
            mlflow_run_id=tracked.mlflow_run_id,
            registry=tracked.registry,
            warnings=tuple(warnings),
            validation=validation.report,
            skipped_validation=validation.report is None,
            refit=refit,
            metrics_of=_metrics_of(validation, refit),
            report_dir=None if report_dir is None else str(report_dir),
            report_files=tuple(str(p) for p in report_files),
        )


def _training_rows(
    settings: Settings, model_cls: type[ModelType], dataset: Dataset
) -> tuple[_TrainingRows, Dataset]:
    """The training rows, and the dataset without its training features (unless --refit
    needs them again): once the caller drops the dataset it had, the training features
    live only in the rows, which let them go once the fits no longer read them."""
    rows = _TrainingRows(dataset, model_cls.feature_dtype)
    return rows, dataset if settings.refit else dataset.without_train_features()


def fit_model(
    settings: Settings,
    model_cls: type[ModelType],
    params: dict[str, Any],
    device: str,
    dataset: Dataset,
    progress: ProgressCallback | None = None,
) -> tuple[ModelType, Calibrator | None]:
    """The model `train` fits on the training part, and its calibration map (fitted
    first, on the last purged fold of the training part; None with --calibration none)."""
    rows = _TrainingRows(dataset, model_cls.feature_dtype)
    return _fit_on(settings, model_cls, params, device, dataset, rows, progress)


class _TrainingRows:
    """The training part's features and labels, held in one place: read a batch at a
    time by a model type that builds its own structure of them (``prepare_fit``), or
    made into one matrix for a type that fits on arrays (the feature frame is let go once
    the matrix exists); :meth:`release` lets both go. Only the feature and label columns
    are held (not the part's tickers and returns)."""

    def __init__(self, dataset: Dataset, dtype: str) -> None:
        import polars as pl

        self._columns = list(dataset.feature_columns)
        kept = [dataset.train.get_column(c) for c in (*self._columns, "label")]
        self._frame: pl.DataFrame | None = pl.DataFrame(kept)
        self._dtype = dtype
        self._x: np.ndarray | None = None
        self.y = dataset.train.get_column("label").to_numpy()

    def batches(self, rows: np.ndarray | None = None) -> FrameBatches:
        from marketpredictor_train.dataset.table import FrameBatches

        assert self._frame is not None, "the training features were released"
        return FrameBatches(self._frame, self._columns, self._dtype, rows)

    def matrix(self) -> np.ndarray:
        """Every row's features as one matrix, built once; the frame goes then."""
        if self._x is None:
            self._x = self.batches().matrix()
            self._frame = None
        return self._x

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The features of ``rows`` (ascending positions) as a matrix of their own."""
        if self._x is not None:
            return self._x[rows]
        return self.batches(rows).matrix()

    def release(self) -> None:
        self._frame = None
        self._x = None


@dataclass
class _Fit:
    """One fit to make: the model and which training rows it learns from (None: every
    row), as the model library's own structure of them or as a matrix."""

    model: ModelType
    rows: np.ndarray | None
    y: np.ndarray
    x: np.ndarray | None = None
    prepared: Any = None

    def prepare(self, training: _TrainingRows) -> None:
        """Build the library's structure of the rows (``prepare_fit``), reading them a
        batch at a time; for a type without one, take the matrix of the rows."""
        self.prepared = self.model.prepare_fit(training.batches(self.rows))
        if self.prepared is None:
            self.x = training.matrix() if self.rows is None else training.take(self.rows)

    def release(self) -> None:
        """Let the rows' structure (or matrix) go once the model is fitted."""
        self.prepared = self.x = None

    def run(self) -> ModelType:
        if self.prepared is not None:
            self.model.fit_prepared(self.prepared)
        else:
            assert self.x is not None
            self.model.fit(self.x, self.y)
        return self.model


def _fit_on(  # noqa: PLR0913 - what to fit, on which rows, and how to report it
    settings: Settings,
    model_cls: type[ModelType],
    params: dict[str, Any],
    device: str,
    dataset: Dataset,
    rows: _TrainingRows,
    progress: ProgressCallback | None,
    *,
    prepared: Callable[[], None] | None = None,
) -> tuple[ModelType, Calibrator | None]:
    """Both fits of a run, one after the other: the calibration fit (when there is one),
    then the model's. For a model type with ``prepare_fit`` each fit's structure is built
    from the feature frame a batch of rows at a time, so no float matrix of the training
    rows exists (500 tickers x 10 years: 117 MB in float32, and 94 MB more for the
    calibration rows' copy); the frame goes once the model's structure is built, and the
    calibration fit's structure before it is, so no two are held at once. A type that
    fits on arrays gets a copy of the calibration rows, then the matrix (the frame goes
    once it is built). ``prepared`` is called before the model's fit starts: what it
    starts is in memory beside that fit's structure only. Freed memory is handed back to
    the system after each structure is built and after each fit."""
    from marketpredictor_train.memory import hand_back_freed_memory

    def new_model() -> ModelType:
        return model_cls(params, device=device, seed=settings.seed)

    calibrator = None
    calibration = _calibration_rows(settings, dataset, rows)
    if calibration is not None:
        first = _Fit(new_model(), calibration.train_rows, rows.y[calibration.train_rows])
        try:
            first.prepare(rows)
        except Exception as exc:
            raise _calibration_failed(model_cls, exc) from exc
        hand_back_freed_memory()  # what building the structure used for a while
        calibrator = _calibrator(settings, model_cls, calibration, first, rows)
        del first, calibration  # the fold's row indices: 9 MB of 500 tickers x 10 years
        hand_back_freed_memory()
    last = _Fit(new_model(), None, rows.y)
    try:
        last.prepare(rows)
    except Exception as exc:
        raise _fit_failed(model_cls, exc) from exc
    rows.release()  # the fit holds what it fits on
    hand_back_freed_memory()
    if prepared is not None:
        prepared()
    model = _fit(model_cls, last, progress)
    del last
    hand_back_freed_memory()
    return model, calibrator


# Polars' allocator hands the pages of a freed frame back within 0.4 s (the decay times
# the `mptrain` command sets): what starts after the feature frame is let go waits that
# long, so that it is not in memory beside those pages. The model fits meanwhile.
AFTER_RELEASE_S = 0.4


def _after_matrices(settings: Settings, tracking: TrainingRun) -> None:
    """What starts beside the model's boosting rounds, once its structure is built, the
    feature frame is gone and the calibration fit is done: the MLflow run opens
    (importing MLflow and opening its store) and validation's libraries load, about
    130 MB together, in memory beside one fit's structure only (and AFTER_RELEASE_S
    later, once the frame's pages are back with the system)."""
    tracking.start(after=AFTER_RELEASE_S)
    if not settings.skip_validation:
        _load_evaluation(after=AFTER_RELEASE_S)


def _load_evaluation(*, after: float = 0.0) -> None:
    import_in_background((*EVALUATION_MODULES, *REPORT_MODULES), after=after)


def _fit_failed(model_cls: type[ModelType], exc: Exception) -> TrainingError:
    return TrainingError(
        f"Training failed - {model_cls.name} could not be fitted: {exc}",
        hint="Try a different model type: --model-type rf",
    )


def _calibration_failed(model_cls: type[ModelType], exc: Exception) -> TrainingError:
    return TrainingError(
        f"Training failed - the calibration fit of {model_cls.name} failed: {exc}",
        hint="Train without calibration: --calibration none",
    )


def _fit(model_cls: type[ModelType], fit: _Fit, progress: ProgressCallback | None) -> ModelType:
    report(progress, "fit", 0, 1, f"fitting {model_cls.name} on {len(fit.y)} rows")
    try:
        model = fit.run()
    except MptrainError:
        raise
    except Exception as exc:
        raise _fit_failed(model_cls, exc) from exc
    report(progress, "fit", 1, 1, f"{model_cls.name} fitted")
    return model


def _calibration_rows(settings: Settings, dataset: Dataset, rows: _TrainingRows) -> Fold | None:
    """The last purged walk-forward fold of the training part, which the calibration fit
    leaves out and is mapped on; None with --calibration none (or without validation)."""
    from marketpredictor_train.tuning.cv import last_walk_forward_fold

    if settings.calibration == "none" or settings.skip_validation:
        return None
    days = dataset.train.get_column("date").to_physical().to_numpy()  # no copy
    try:
        return last_walk_forward_fold(
            days, rows.y, n_folds=settings.cv_folds, purge_gap=settings.purge_gap
        )
    except MptrainError as exc:
        log.warning(f"Probabilities are not calibrated: {exc.message}")
        return None


def _calibrator(
    settings: Settings,
    model_cls: type[ModelType],
    fold: Fold,
    fit: _Fit,
    rows: _TrainingRows,
) -> Calibrator | None:
    """The calibration map of this run: the same model type and parameters fitted on the
    training part without its last purged walk-forward fold, whose P(up) on that fold
    (rows it never saw, read from ``rows`` once the fit is done) are mapped to what
    happened there."""
    from marketpredictor_train.memory import hand_back_freed_memory
    from marketpredictor_train.models.calibration import fit_calibrator

    try:
        model = fit.run()
    except MptrainError as exc:
        log.warning(f"Probabilities are not calibrated: {exc.message}")
        return None
    except Exception as exc:
        raise _calibration_failed(model_cls, exc) from exc
    # what the fit learned from goes before the fold's rows are read and scored
    fit.release()
    hand_back_freed_memory()
    calibrator = fit_calibrator(
        settings.calibration,
        model.predict_proba(rows.take(fold.valid_rows)),
        rows.y[fold.valid_rows],
        fitted_on={
            "fold_train_end": fold.train_end.isoformat(),
            "valid_start": fold.valid_start.isoformat(),
            "valid_end": fold.valid_end.isoformat(),
            "train_rows": int(fold.train_rows.size),
            "rows": int(fold.valid_rows.size),
        },
    )
    log.info(
        "Calibration fitted on the last purged fold of the training part",
        method=calibrator.method,
        rows=calibrator.n_rows,
        valid_start=fold.valid_start.isoformat(),
    )
    return calibrator


def _validate(
    settings: Settings,
    model: ModelType,
    calibrator: Calibrator | None,
    dataset: Dataset,
    loaded: LoadedData,
    store: ModelStore,
) -> _Validation:
    """Backtest the fitted model, score production on the same rows and let the gate
    decide; with --skip-validation only decide (never promote unless forced)."""
    from marketpredictor_train.validation.gate import decide_unvalidated

    if settings.skip_validation:
        log.warning(
            "Validation skipped (--skip-validation): no backtest, no comparison, no report; "
            "the model is promoted only with --force"
        )
        return _Validation(
            report=None,
            champion=ChampionScore(_production_version(store), None),
            decision=decide_unvalidated(force=settings.force, dry_run=settings.dry_run),
        )
    backtest, proba = backtest_model(settings, model, calibrator, dataset, loaded)
    champion = score_champion(
        settings,
        store,
        loaded.frame,
        dataset.backtest,
        proba,
        horizon=settings.horizon,
        rows_spec_hash=dataset.spec.hash,
    )
    return gate(settings, backtest, champion)


def backtest_model(
    settings: Settings,
    model: ModelType,
    calibrator: Calibrator | None,
    dataset: Dataset,
    loaded: LoadedData,
    *,
    trading_intervals: bool = True,
) -> tuple[ValidationReport, np.ndarray]:
    """The fitted model's backtest on the dataset's backtest rows (before any champion is
    scored), and its calibrated P(up) on those rows (``trading_intervals``: see
    :func:`evaluate`)."""
    from marketpredictor_train.validation.backtest import evaluate
    from marketpredictor_train.validation.gate import skill_metric_for

    x_test, _ = dataset.xy(dataset.backtest, model.feature_dtype)
    raw = model.predict_proba(x_test)
    proba = raw if calibrator is None else calibrator.apply(raw)
    importance = model.feature_importance()
    backtest = evaluate(
        dataset.backtest,
        proba,
        loaded.frame,
        horizon=settings.horizon,
        dead_band=settings.dead_band,
        cost_per_trade=settings.cost_per_trade,
        thresholds=settings.thresholds,
        seed=settings.seed,
        subject="new model",
        window=dataset.window.to_dict(),
        model_type=model.name,
        feature_importance=_importance(dataset, importance),
        base_rate=train_up_rate(dataset),
        gate_level=settings.gate_level,
        skill_metric=skill_metric_for(settings.primary_metric),
        uncalibrated=None if calibrator is None else raw,
        calibration_method=None if calibrator is None else calibrator.method,
        trading_intervals=trading_intervals,
    )
    return backtest, proba


def gate(settings: Settings, backtest: ValidationReport, champion: ChampionScore) -> _Validation:
    """The gate's decision on a backtested model against the champion scored on its rows."""
    import dataclasses

    for warning in champion.warnings:
        log.warning(warning)
    backtest = dataclasses.replace(
        backtest,
        comparison=champion.comparison,
        production_version=champion.version,
        warnings=(*backtest.warnings, *champion.warnings),
        notes=(*backtest.notes, *universe_notes(settings)),
    )
    decision = gate_decision(settings, backtest.metrics, backtest.skill, champion.comparison)
    return _Validation(backtest, champion, decision)


def gate_decision(
    settings: Settings,
    metrics: dict[str, Any],
    skill: SkillEvidence | None,
    comparison: Comparison | None,
) -> GateDecision:
    """The gate under these settings: thresholds, skill gate, champion margin, force and
    dry run (see :func:`marketpredictor_train.validation.gate.decide`)."""
    from marketpredictor_train.validation.gate import decide

    return decide(
        metrics,
        settings.thresholds,
        skill=skill,
        comparison=comparison,
        skill_gate=settings.skill_gate,
        champion_margin=settings.champion_margin,
        force=settings.force,
        dry_run=settings.dry_run,
    )


def train_up_rate(dataset: Dataset) -> float:
    """The share of training rows that went up: the constant forecast to beat."""
    labels = dataset.train.get_column("label").to_numpy()
    return float(labels.mean()) if labels.size else 0.0


def _importance(dataset: Dataset, importance: Any) -> dict[str, float] | None:
    if importance is None:
        return None
    return {c: float(v) for c, v in zip(dataset.feature_columns, importance, strict=True)}


def _production_version(store: ModelStore) -> str | None:
    try:
        production = store.production()
    except MptrainError:
        return None
    return production.version if production else None


def _refit(
    model_cls: type[ModelType],
    params: dict[str, Any],
    device: str,
    settings: Settings,
    dataset: Dataset,
) -> tuple[ModelType, int, str]:
    """The same model type and parameters fitted on the training and backtest rows; returns
    the model, its number of rows and the last date it learned from."""
    import polars as pl

    # (the training features may be float32, the backtest's are float64; only the
    # backtest has the returns)
    columns = [*dataset.feature_columns, "label", "date"]
    parts = [dataset.train.select(columns), dataset.backtest.select(columns)]
    rows = pl.concat(parts, how="vertical_relaxed")
    x, y = dataset.xy(rows, model_cls.feature_dtype)
    model = model_cls(params, device=device, seed=settings.seed)
    try:
        model.fit(x, y)
    except MptrainError:
        raise
    except Exception as exc:
        raise TrainingError(
            f"Training failed - the refit of {model_cls.name} on every row failed: {exc}",
            hint="Run without --refit to keep the validated model.",
        ) from exc
    log.info("Refit on every row after validation", rows=rows.height)
    return model, rows.height, str(rows.get_column("date").max())


def _manifest(
    settings: Settings,
    model: ModelType,
    dataset: Dataset,
    loaded: LoadedData,
    validation: _Validation,
    run_id: str,
    calibrator: Calibrator | None,
) -> dict[str, Any]:
    spec = dataset.spec
    comparison = validation.champion.comparison
    return {
        "format": MANIFEST_FORMAT,
        "model_type": model.name,
        "params": dict(model.params),
        "payload_format": model.payload_format,
        "feature_spec": spec.to_dict(),
        "feature_spec_hash": spec.hash,
        "feature_columns": list(dataset.feature_columns),
        "feature_importance": _importance(dataset, model.feature_importance()),
        "label": {
            "horizon": settings.horizon,
            "dead_band": settings.dead_band,
            "definition": "1 if close[t+horizon]/close[t]-1 > dead_band, 0 if < -dead_band",
            "dead_band_applies_to": "training labels only",
            "train_up_rate": train_up_rate(dataset),
        },
        "data_window": data_window(loaded, dataset.window.to_dict()),
        "metrics": validation.metrics,
        "production_metrics": None if comparison is None else dict(comparison.production),
        "production_version": validation.champion.version,
        "thresholds": dict(settings.thresholds),
        "decision": validation.decision.to_dict(),
        "calibration": None if calibrator is None else calibrator.to_dict(),
        "n_train": dataset.train.height,
        "n_test": dataset.backtest.height,
        "seed": settings.seed,
        "run_id": run_id,
        "library_versions": _library_versions(),
    }


def _manifest_validation(
    validation: _Validation,
    *,
    data_window: dict[str, Any],
    refit_rows: int | None,
    refit_train_end: str | None,
) -> dict[str, Any]:
    """Manifest entries saying what the saved model's metrics are: the backtest metrics
    of this very model, none (validation skipped), or none because it was refit (the
    validated model's metrics kept apart, under ``refit``)."""
    if validation.report is None:
        return {
            "metrics": {},
            "validation": {"status": "skipped", "metrics_of": METRICS_OF_SKIPPED},
        }
    if refit_rows is None:
        return {"validation": {"status": "validated", "metrics_of": METRICS_OF_VALIDATED}}
    return {
        "metrics": {},
        "n_train": refit_rows,
        # `mptrain validate` scores only rows after train_end: for a refit model that is
        # after the backtest it learned from.
        "data_window": {**data_window, "train_end": refit_train_end, "refit": True},
        "validation": {"status": "refit", "metrics_of": METRICS_OF_REFIT},
        "refit": {
            "n_rows": refit_rows,
            "train_end": refit_train_end,
            "validated_metrics": validation.metrics,
            "note": REFIT_NOTE,
        },
    }


def _metrics_of(validation: _Validation, refit: bool) -> str:
    if validation.report is None:
        return METRICS_OF_SKIPPED
    return METRICS_OF_REFIT if refit else METRICS_OF_VALIDATED


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("marketpredictor-train", "xgboost", "lightgbm", "scikit-learn", "polars", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _save_and_promote(
    settings: Settings,
    store: ModelStore,
    manifest: dict[str, Any],
    model: ModelType,
    validation: _Validation,
    tracking: TrainingRun,
) -> _Saved:
    """Save the version (not on a dry run), register it in MLflow, and promote it when the
    gate says so, unless production changed since it was scored (then: not promoted)."""
    from marketpredictor_train.store import ProductionChanged
    from marketpredictor_train.store.store import UNCHECKED
    from marketpredictor_train.validation.gate import GateDecision

    decision = validation.decision
    if settings.dry_run:
        return _Saved(None, None, None, decision)
    stored = store.save(manifest, model.to_bytes())
    registered = tracking.register(stored)  # None when off or unreachable: a warning
    if not decision.promote:
        return _Saved(stored.version, str(stored.path), None, decision)
    try:
        record = store.promote(
            stored.version,
            reason=decision.reason,
            forced=decision.forced,
            # --force replaces whatever is there; a normal promotion only the model it beat.
            expected_production=UNCHECKED if settings.force else validation.champion.version,
            registered=registered,
        )
    except ProductionChanged as exc:
        refused = GateDecision(False, False, f"Model NOT promoted - {exc.message}", ())
        return _Saved(stored.version, str(stored.path), None, refused)
    return _Saved(stored.version, str(stored.path), record, decision)


def _log_outcome(settings: Settings, saved: _Saved) -> None:
    reason = saved.decision.reason
    if saved.promoted:
        log.info(f"Model promoted to production - version {saved.version}", reason=reason)
    elif settings.dry_run:
        log.info(reason)
    else:
        log.warning(reason)


def _status(settings: Settings, saved: _Saved, *, skipped: bool) -> str:
    if settings.dry_run:
        return "dry_run"
    if saved.promoted:
        return "promoted"
    return "not_validated" if skipped else "not_promoted"


def _write_report(
    settings: Settings,
    validation: _Validation,
    saved: _Saved,
    *,
    run_id: str,
    status: str,
    refit: bool,
) -> tuple[Path | None, list[Path], str | None]:
    """The report of a validated run: --report-dir, else next to the saved version
    (models/reports/<version>/), else (dry run) logs/reports/dry_run_<time>_<run>/."""
    if validation.report is None:
        return None, [], None
    if settings.report_dir is not None:
        folder = Path(settings.report_dir)
    elif saved.version is not None:
        folder = Path(settings.models_dir) / REPORTS_DIR_NAME / saved.version
    else:
        folder = run_report_folder(logs_reports_dir(settings), "dry_run", run_id)
    decision = saved.decision
    version = saved.version
    decision_doc = {
        "status": status,
        "promoted": saved.promoted,
        "passed": decision.passed,
        "forced": decision.forced and saved.promoted,
        "reason": decision.reason,
        "version": version,
        "refit": refit,
        "metrics_of": METRICS_OF_REFIT if refit else METRICS_OF_VALIDATED,
        "notes": [REFIT_NOTE] if refit else [],
    }
    title = f"Validation report - {'version ' + version if version else 'dry run ' + run_id}"
    return write_validation_report(validation.report, folder, title=title, decision=decision_doc)


def _after_promotion(settings: Settings, record: PromotionRecord | None) -> str | None:
    """Run the configured post-promotion command; a failure is reported, not undone."""
    if record is None or not settings.post_promote_command:
        return None
    from marketpredictor_train.store.hooks import run_post_promote_hook

    outcome = run_post_promote_hook(settings, record)
    return None if outcome.ok else outcome.message
