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
from marketpredictor_train.results import TrainResult

if TYPE_CHECKING:
    import numpy as np

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import Dataset
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.store import ModelStore

log = structlog.get_logger(__name__)

MANIFEST_FORMAT = 1


class _Timer:
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
    timer = _Timer()
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

        loaded, dataset = _prepare_data(settings, timer, progress)
        params, param_source = _choose_params(settings, model_cls, dataset, timer, progress)

        with timer("fit"):
            model = model_cls(params, device=device, seed=settings.seed)
            x_train, y_train = dataset.xy(dataset.train)
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

        from marketpredictor_train.store import ModelStore

        store = ModelStore(settings.models_dir)
        with timer("validate"):
            x_test, y_test = dataset.xy(dataset.backtest)
            proba = model.predict_proba(x_test)
            metrics = _metrics(y_test, proba)
            production = _score_production(store, loaded, dataset, proba)
        log.info(
            f"Training complete - Accuracy: {metrics['accuracy']:.2%}",
            metrics={k: metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
        )

        from marketpredictor_train.validation.gate import decide

        decision = decide(
            metrics,
            settings.thresholds,
            production_metrics=production["metrics"],
            challenger_on_common_rows=production["common_new"],
            primary_metric=settings.primary_metric,
            force=settings.force,
            dry_run=settings.dry_run,
        )

        manifest = _manifest(settings, model, dataset, loaded, metrics, production, run_id)
        version = model_path = None
        promoted = False
        with timer("store"):
            if not settings.dry_run:
                stored = store.save(manifest, model.to_bytes())
                version, model_path = stored.version, str(stored.path)
                if decision.promote:
                    store.promote(
                        version,
                        reason=decision.reason,
                        forced=settings.force and not decision.passed,
                    )
                    promoted = True
        if promoted:
            log.info(f"Model promoted to production - version {version}", reason=decision.reason)
        elif settings.dry_run:
            log.info(decision.reason)
        else:
            log.warning(decision.reason)

        exit_code = EXIT_SUCCESS if decision.passed or promoted else EXIT_VALIDATION_FAILED
        status = "dry_run" if settings.dry_run else ("promoted" if promoted else "not_promoted")
        warnings: list[str] = list(production["warnings"])

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
                )
                if tracking_warning:
                    warnings.append(tracking_warning)

        hook_failure = _after_promotion(settings, store, promoted)
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
        )


def resolve_device(requested: str, model_cls: type[ModelType]) -> str:
    """'auto' becomes 'cuda' only for model types that support it on a machine with a GPU."""
    if requested == "cpu" or not model_cls.supports_gpu:
        if requested == "cuda":
            log.warning(
                "Model type has no GPU support; fitting on the CPU", model_type=model_cls.name
            )
        return "cpu"
    if requested == "cuda":
        return "cuda"
    return "cuda" if _gpu_present() else "cpu"


def _gpu_present() -> bool:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _prepare_data(
    settings: Settings, timer: _Timer, progress: ProgressCallback | None
) -> tuple[LoadedData, Dataset]:
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset import MIN_BACKTEST_ROWS, build_dataset
    from marketpredictor_train.features import default_spec, warmup_rows
    from marketpredictor_train.progress import report

    spec = default_spec()
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


def _choose_params(
    settings: Settings,
    model_cls: type[ModelType],
    dataset: Dataset,
    timer: _Timer,
    progress: ProgressCallback | None,
) -> tuple[dict[str, Any], str]:
    """The model type's defaults (tuning plugs in here)."""
    return dict(model_cls.default_params), "defaults"


def _metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    from marketpredictor_train.validation.metrics import classification_metrics

    return classification_metrics(y_true, (proba >= 0.5).astype(int))


def _score_production(
    store: ModelStore, loaded: LoadedData, dataset: Dataset, new_proba: np.ndarray
) -> dict[str, Any]:
    """Score the production model on the same backtest rows as the new one.

    Returns its version and metrics plus the new model's metrics on the rows both could
    score (the production model may use another feature spec, with other warm-up rows)."""
    from marketpredictor_train.models.trained import TrainedModel

    empty: dict[str, Any] = {"version": None, "metrics": None, "common_new": None, "warnings": []}
    try:
        production_file = store.load_production()
    except MptrainError as exc:
        warning = f"The production model could not be read ({exc.message}); thresholds alone decide"
        log.warning(warning)
        return {**empty, "warnings": [warning]}
    if production_file is None:
        log.info("No production model yet; thresholds alone decide")
        return empty
    try:
        champion = TrainedModel.from_model_file(production_file)
        spec = champion.spec
        from marketpredictor_train.features import build_features

        feats = build_features(loaded.frame, spec)
        keys = dataset.backtest.select(["ticker", "date", "label"]).with_row_index("_row")
        joined = (
            keys.join(
                feats.select(["ticker", "date", *champion.feature_columns]),
                on=["ticker", "date"],
                how="inner",
            )
            .drop_nulls(champion.feature_columns)
            .sort("_row")
        )
        rows = joined.get_column("_row").to_numpy()
        champion_proba = champion.predict_proba(joined, spec)
    except MptrainError as exc:
        warning = (
            f"The production model could not be scored ({exc.message}); thresholds alone decide"
        )
        log.warning(warning)
        return {**empty, "version": production_file.manifest.get("version"), "warnings": [warning]}
    y = joined.get_column("label").to_numpy()
    prod_metrics = _metrics(y, champion_proba)
    common_new = _metrics(y, new_proba[rows])
    log.info(
        "Production model scored on the same backtest rows",
        version=champion.version,
        rows=int(len(rows)),
        metrics={k: prod_metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
    )
    return {
        "version": champion.version,
        "metrics": prod_metrics,
        "common_new": common_new,
        "warnings": [],
    }


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


def _after_promotion(settings: Settings, store: ModelStore, promoted: bool) -> str | None:
    """Run the configured post-promotion command; a failure is reported, not undone."""
    if not promoted or not settings.post_promote_command:
        return None
    from marketpredictor_train.store.hooks import run_post_promote_hook

    record = store.history()[-1]
    outcome = run_post_promote_hook(settings, record)
    return None if outcome.ok else outcome.message
