"""One `train` run: data -> features and labels -> chronological split -> fit -> backtest
-> champion vs challenger -> save, promote, track. Each step is a function of its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import (
    EXIT_SUCCESS,
    EXIT_VALIDATION_FAILED,
    HookError,
    MptrainError,
)
from marketpredictor_train.progress import report
from marketpredictor_train.results import TrainResult

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.features import FeatureSpec
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.store import ModelStore, PromotionRecord
    from marketpredictor_train.validation.gate import GateDecision

log = structlog.get_logger(__name__)

MANIFEST_FORMAT = 1


class StepTimer:
    """Seconds spent per named step of a run (a step timed twice adds up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - start, 3)


def train(settings: Settings, *, progress: ProgressCallback | None = None) -> TrainResult:
    """Train, validate and maybe promote one model; see TrainResult for what comes back.

    Raises MptrainError subclasses (exit 1 or 3) when the run cannot complete; a model
    that trains but is not promoted is a result (exit code 2), not an exception."""
    from marketpredictor_train.models.registry import get_model_type

    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    timer = StepTimer()
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        model_cls = get_model_type(settings.model_type)  # unknown type: exit 3 before any work
        device = resolve_device(settings.device, model_cls)
        log.info(
            "Training started",
            model_type=model_cls.name,
            source=settings.source,
            period=settings.period,
            horizon=settings.horizon,
            device=device,
        )

        loaded, dataset = prepare_data(settings, timer, progress)
        with timer("features"):
            from marketpredictor_train.validation.stage import guard_dataset

            dataset = guard_dataset(settings, loaded, dataset)
        params, param_source = _choose_params(settings, model_cls, dataset, timer, progress)

        with timer("fit"):
            model = model_cls(params, device=device, seed=settings.seed)
            x_train, y_train = dataset.xy(dataset.train)
            report(progress, "fit", 0, 1, f"fitting {model_cls.name} on {len(y_train)} rows")
            try:
                model.fit(x_train, y_train)
            except MptrainError:
                raise
            except Exception as exc:
                from marketpredictor_train.errors import TrainingError

                raise TrainingError(
                    f"Training failed - {model_cls.name} could not be fitted: {exc}",
                    hint="Try a different model type: --model-type rf",
                ) from exc
            report(progress, "fit", 1, 1, f"{model_cls.name} fitted")

        from marketpredictor_train.store import ModelStore

        store = ModelStore(settings.models_dir)
        from marketpredictor_train.validation import stage as validation_stage

        with timer("validate"):
            validation = validation_stage.validate_new_model(
                settings, model=model, dataset=dataset, loaded=loaded, store=store
            )
        metrics, production, decision = (
            validation.metrics,
            validation.production,
            validation.decision,
        )
        if validation.skipped:
            log.info("Training complete - validation skipped")
        else:
            log.info(
                f"Training complete - Accuracy: {metrics['accuracy']:.2%}",
                metrics={k: metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
            )

        # --refit: the model that passed the gate is refit on every row and that one is
        # saved; only when it is about to be promoted, so an unpromoted version is always
        # the validated model itself.
        refit = settings.refit and decision.promote and not settings.dry_run
        refit_rows = refit_train_end = None
        if refit:
            with timer("refit"):
                model, refit_rows, refit_train_end = _refit(
                    model_cls, params, device, settings, dataset
                )
        manifest = _manifest(settings, model, dataset, loaded, metrics, production, run_id)
        manifest.update(
            validation_stage.manifest_fields(
                validation,
                data_window=manifest["data_window"],
                refit_rows=refit_rows,
                refit_train_end=refit_train_end,
            )
        )
        version = model_path = None
        promoted = False
        record = None
        with timer("store"):
            if not settings.dry_run:
                stored = store.save(manifest, model.to_bytes())
                version, model_path = stored.version, str(stored.path)
                if decision.promote:
                    record, decision = _promote(store, version, decision, production, settings)
                    promoted = record is not None
        if promoted:
            log.info(f"Model promoted to production - version {version}", reason=decision.reason)
        elif settings.dry_run:
            log.info(decision.reason)
        else:
            log.warning(decision.reason)

        exit_code = (
            EXIT_SUCCESS
            if decision.passed or promoted or validation.skipped
            else EXIT_VALIDATION_FAILED
        )
        status = "dry_run" if settings.dry_run else ("promoted" if promoted else "not_promoted")
        if validation.skipped and status == "not_promoted":
            status = "not_validated"
        warnings: list[str] = list(production["warnings"])
        report_dir, report_files, report_warning = validation_stage.write_train_report(
            settings,
            validation,
            version=version,
            run_id=run_id,
            status=status,
            promoted=promoted,
            decision=decision,
            refit=refit,
        )
        if report_warning:
            warnings.append(report_warning)

        mlflow_run_id = None
        with timer("tracking"):
            if settings.mlflow:
                from marketpredictor_train.tracking import log_training_run

                mlflow_run_id, tracking_warning = log_training_run(
                    settings,
                    run_id=run_id,
                    model_type=model_cls.name,
                    params=model.params,
                    metrics=metrics,
                    n_features=len(dataset.feature_columns),
                    status=status,
                    promoted=promoted,
                    version=version,
                    model_path=model_path,
                    reason=decision.reason,
                    extra_metrics={
                        **validation_stage.tracking_metrics(validation.report),
                        "refit": float(refit),
                    },
                    artifacts=report_files,
                )
                if tracking_warning:
                    warnings.append(tracking_warning)

        hook_failure = _after_promotion(settings, record)
        if hook_failure:
            # The promotion stands; the run still fails so a scheduler notices.
            warnings.append(hook_failure)
            exit_code = HookError.exit_code

        return TrainResult(
            status=status,
            exit_code=exit_code,
            promoted=promoted,
            passed_validation=decision.passed,
            reason=decision.reason,
            version=version,
            model_path=model_path,
            model_type=model_cls.name,
            params=dict(model.params),
            metrics=metrics,
            production_version=production["version"],
            production_metrics=production["metrics"],
            thresholds=dict(settings.thresholds),
            primary_metric=settings.primary_metric,
            forced=bool(settings.force and promoted and not decision.passed),
            dry_run=settings.dry_run,
            n_train=dataset.train.height,
            n_test=dataset.backtest.height,
            n_features=len(dataset.feature_columns),
            data_window=_data_window(loaded, dataset),
            dropped_tickers=dict(loaded.dropped),
            timings=timer.timings,
            duration_s=round(time.perf_counter() - started, 3),
            run_id=run_id,
            mlflow_run_id=mlflow_run_id,
            warnings=tuple(warnings),
            extra={"param_source": param_source},
            validation=None if validation.report is None else validation.report.to_dict(),
            skipped_validation=validation.skipped,
            refit=refit,
            metrics_of=(
                validation_stage.METRICS_OF_SKIPPED
                if validation.skipped
                else (
                    validation_stage.METRICS_OF_REFIT
                    if refit
                    else validation_stage.METRICS_OF_VALIDATED
                )
            ),
            report_dir=None if report_dir is None else str(report_dir),
            report_files=tuple(str(p) for p in report_files),
        )


def resolve_device(requested: str, model_cls: type[ModelType]) -> str:
    """'auto' becomes 'cuda' only when a GPU is present and the model type can use it."""
    from marketpredictor_train.models.device import resolve_device as _resolve_device

    return _resolve_device(requested, model_cls)


def prepare_data(
    settings: Settings, timer: StepTimer, progress: ProgressCallback | None
) -> tuple[LoadedData, Dataset]:
    """Load the market data and cut the modelling table into train | purge | backtest;
    shared by train and optimize so both see exactly the same rows."""
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


def feature_spec(settings: Settings) -> FeatureSpec:
    """The feature spec of this run: the `features` setting, or the built-in default."""
    from marketpredictor_train.features import FeatureSpec, default_spec

    if settings.features is None:
        return default_spec()
    return FeatureSpec.from_dict({"indicators": settings.features})


def _choose_params(
    settings: Settings,
    model_cls: type[ModelType],
    dataset: Dataset,
    timer: StepTimer,
    progress: ProgressCallback | None,
) -> tuple[dict[str, Any], str]:
    """Tuned with --optimize; else best_hyperparameters.json when it is for this model
    type; else the model type's defaults. Returns (params, where they came from)."""
    from marketpredictor_train.tuning import choose_params

    return choose_params(settings, model_cls, dataset, timer=timer, progress=progress)


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

    rows = pl.concat([dataset.train, dataset.backtest], how="vertical")
    x, y = dataset.xy(rows)
    model = model_cls(params, device=device, seed=settings.seed)
    try:
        model.fit(x, y)
    except MptrainError:
        raise
    except Exception as exc:
        from marketpredictor_train.errors import TrainingError

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
    metrics: dict[str, Any],
    production: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    spec = dataset.spec
    importance = model.feature_importance()
    return {
        "format": MANIFEST_FORMAT,
        "model_type": model.name,
        "params": dict(model.params),
        "payload_format": model.payload_format,
        "feature_spec": spec.to_dict(),
        "feature_spec_hash": spec.hash,
        "feature_columns": list(dataset.feature_columns),
        "feature_importance": (
            None
            if importance is None
            else {c: float(v) for c, v in zip(dataset.feature_columns, importance, strict=True)}
        ),
        "label": {
            "horizon": settings.horizon,
            "dead_band": settings.dead_band,
            "definition": "1 if close[t+horizon]/close[t]-1 > dead_band, 0 if < -dead_band",
        },
        "data_window": _data_window(loaded, dataset),
        "metrics": metrics,
        "production_metrics": production["metrics"],
        "production_version": production["version"],
        "thresholds": dict(settings.thresholds),
        "n_train": dataset.train.height,
        "n_test": dataset.backtest.height,
        "seed": settings.seed,
        "run_id": run_id,
        "library_versions": _library_versions(),
    }


def _data_window(loaded: LoadedData, dataset: Dataset) -> dict[str, Any]:
    return {
        "source": loaded.source,
        "tickers": list(loaded.tickers),
        "start": loaded.start.isoformat(),
        "end": loaded.end.isoformat(),
        **dataset.window.to_dict(),
    }


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("marketpredictor-train", "xgboost", "lightgbm", "scikit-learn", "polars", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _promote(
    store: ModelStore,
    version: str,
    decision: GateDecision,
    production: dict[str, Any],
    settings: Settings,
) -> tuple[PromotionRecord | None, GateDecision]:
    """Promote unless production changed since it was scored (then: not promoted)."""
    from marketpredictor_train.store import ProductionChanged
    from marketpredictor_train.store.store import UNCHECKED
    from marketpredictor_train.validation.gate import GateDecision

    forced = settings.force and not decision.passed
    try:
        record = store.promote(
            version,
            reason=decision.reason,
            forced=forced,
            # --force replaces whatever is there; a normal promotion only the model it beat.
            expected_production=UNCHECKED if settings.force else production["version"],
        )
    except ProductionChanged as exc:
        return None, GateDecision(False, False, f"Model NOT promoted - {exc.message}", ())
    return record, decision


def _after_promotion(settings: Settings, record: PromotionRecord | None) -> str | None:
    """Run the configured post-promotion command; a failure is reported, not undone."""
    if record is None or not settings.post_promote_command:
        return None
    from marketpredictor_train.store.hooks import run_post_promote_hook

    outcome = run_post_promote_hook(settings, record)
    return None if outcome.ok else outcome.message
