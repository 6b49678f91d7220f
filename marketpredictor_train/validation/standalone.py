"""`mptrain validate`: backtest a saved model (production, a version, or a model file) on
the latest data, with the same metrics, thresholds and report as `train`.

Only rows the model has never learned from are scored: rows in the backtest window that
also come after the model's own training data (its manifest's ``train_end``) plus the
purge gap. A scheduled job can run it between retrainings to catch decay.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from bisect import bisect_right
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import (
    EXIT_SUCCESS,
    EXIT_VALIDATION_FAILED,
    ConfigError,
    DataError,
    MptrainError,
    StoreError,
)
from marketpredictor_train.results import ValidateResult
from marketpredictor_train.validation.metrics import SEED_METRICS

if TYPE_CHECKING:
    import polars as pl

    from marketpredictor_train.config import Settings
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.store import ModelFile, ModelStore

log = structlog.get_logger(__name__)


def validate(
    settings: Settings,
    *,
    version: str | None = None,
    model_file: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ValidateResult:
    """Validate the production model, or ``version``, or the model in ``model_file``.

    Below a threshold is a result with exit code 2, not an exception; a model or data
    that cannot be read raises MptrainError (exit 1, or 3 for an unknown version)."""
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset import MIN_BACKTEST_ROWS, labelled_features
    from marketpredictor_train.features import warmup_rows
    from marketpredictor_train.models.trained import TrainedModel
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.validation.backtest import evaluate
    from marketpredictor_train.validation.split import chronological_split

    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        store = ModelStore(settings.models_dir)
        target, target_file, path = _target(store, version, model_file)
        model = TrainedModel.from_model_file(target_file)
        manifest = target_file.manifest
        label = manifest.get("label") or {}
        horizon = int(label.get("horizon", 1))
        dead_band = float(label.get("dead_band", 0.0))
        spec = model.spec
        log.info(
            "Validation started",
            target=target,
            version=model.version,
            model_type=manifest.get("model_type"),
            horizon=horizon,
            source=settings.source,
        )

        loaded = load_ohlcv(
            settings, min_history=warmup_rows(spec) + horizon + MIN_BACKTEST_ROWS, progress=progress
        )
        purge_gap = horizon + settings.embargo_days
        window = chronological_split(
            loaded.frame.get_column("date"),
            backtest_months=settings.backtest_months,
            purge_gap=purge_gap,
        )
        table = labelled_features(loaded.frame, spec, horizon=horizon, dead_band=dead_band)
        rows, unseen_from, warnings = _unseen_rows(
            table, loaded.frame, window.backtest_start, manifest, purge_gap
        )
        if rows.height == 0:
            raise DataError(
                "Validation failed - no backtest rows after the model's own training data "
                f"(it learned from rows up to {_train_end(manifest)}; the data ends "
                f"{loaded.end})",
                hint="Validate on newer data, or widen the window with --backtest-months.",
            )
        if rows.height < MIN_BACKTEST_ROWS:
            warnings.append(
                f"Only {rows.height} backtest rows: the metrics are too noisy to mean much"
            )
        proba = model.predict_proba(rows, spec)
        window_doc = {
            **window.to_dict(),
            "backtest_start": unseen_from.isoformat(),
            "train_end": _train_end(manifest),
        }
        report = evaluate(
            rows,
            proba,
            loaded.frame,
            horizon=horizon,
            dead_band=dead_band,
            cost_per_trade=settings.cost_per_trade,
            thresholds=settings.thresholds,
            seed=settings.seed,
            subject=f"version {model.version}" if model.version else str(path),
            window=window_doc,
            version=model.version,
            model_type=manifest.get("model_type"),
            feature_importance=manifest.get("feature_importance"),
        )
        warnings = [*warnings, *report.warnings]

        comparison, production_version = _compare(
            settings, store, target, model.version, loaded.frame, rows, proba, horizon, warnings
        )
        report = dataclasses.replace(
            report,
            comparison=comparison,
            production_version=production_version,
            warnings=tuple(warnings),
        )
        metrics = report.metrics
        log.info(
            f"Validation complete - Accuracy: {metrics['accuracy']:.2%}",
            metrics={k: metrics[k] for k in SEED_METRICS},
        )

        failed = report.failed_thresholds
        if failed:
            first = failed[0]
            check = report.thresholds[first]
            reason = (
                f"Validation failed - {first} below threshold "
                f"({_pct(check['value'])} < {check['threshold']:.2%})"
            )
            if len(failed) > 1:
                reason += " (also below: " + ", ".join(failed[1:]) + ")"
            log.warning(reason)
        else:
            reason = "Validation passed - every metric meets its threshold"
            log.info(reason)
        passed = not failed
        status = "passed" if passed else "failed"

        folder = _report_folder(settings, store, model.version, path, run_id)
        report_files: list[Path] = []
        try:
            from marketpredictor_train.validation.report import write_report

            title = "Validation of " + (f"version {model.version}" if model.version else path.name)
            report_files = write_report(
                report,
                folder,
                title=title,
                decision={"status": status, "passed": passed, "reason": reason, "target": target},
            )
            log.info("Validation report written", path=str(folder / "report.html"))
        except OSError as exc:
            warnings.append(f"The validation report could not be written to {folder}: {exc}")
            log.warning(warnings[-1])
            folder = None  # type: ignore[assignment]

        mlflow_run_id = None
        if settings.mlflow:
            from marketpredictor_train.tracking import log_validation_run
            from marketpredictor_train.validation.stage import tracking_metrics

            mlflow_run_id, tracking_warning = log_validation_run(
                settings,
                run_id=run_id,
                target=target,
                version=model.version,
                model_type=manifest.get("model_type"),
                metrics=metrics,
                status=status,
                reason=reason,
                extra_metrics=tracking_metrics(report),
                artifacts=report_files,
            )
            if tracking_warning:
                warnings.append(tracking_warning)

        data_window = {
            "source": loaded.source,
            "tickers": list(loaded.tickers),
            "start": loaded.start.isoformat(),
            "end": loaded.end.isoformat(),
            **report.window,
        }
        return ValidateResult(
            status=status,
            exit_code=EXIT_SUCCESS if passed else EXIT_VALIDATION_FAILED,
            passed=passed,
            reason=reason,
            target=target,
            version=model.version,
            model_path=str(path),
            model_type=manifest.get("model_type"),
            metrics=dict(metrics),
            thresholds=dict(settings.thresholds),
            primary_metric=settings.primary_metric,
            production_version=production_version,
            production_metrics=comparison["production"] if comparison else None,
            n_test=rows.height,
            data_window=data_window,
            validation=report.to_dict(),
            report_dir=None if folder is None else str(folder),
            report_files=tuple(str(p) for p in report_files),
            duration_s=round(time.perf_counter() - started, 3),
            run_id=run_id,
            warnings=tuple(warnings),
            mlflow_run_id=mlflow_run_id,
        )


def _target(
    store: ModelStore, version: str | None, model_file: Path | None
) -> tuple[str, ModelFile, Path]:
    from marketpredictor_train.store import read_model_file

    if version is not None and model_file is not None:
        raise ConfigError("--version and --model-file name two models; give one of them")
    if model_file is not None:
        path = Path(model_file)
        return "model_file", read_model_file(path), path
    if version is not None:
        return "version", store.load(version), store.path_of(version)
    production = store.load_production()
    if production is None:
        raise StoreError(
            f"No production model in {store.models_dir} to validate",
            hint="Train one with `mptrain train`, or name a model: --version V or "
            "--model-file PATH.",
        )
    return "production", production, store.prod_path


def _train_end(manifest: dict[str, Any]) -> str | None:
    value = (manifest.get("data_window") or {}).get("train_end")
    return str(value) if value else None


def _unseen_rows(
    table: pl.DataFrame,
    ohlcv: pl.DataFrame,
    backtest_start: date,
    manifest: dict[str, Any],
    purge_gap: int,
) -> tuple[pl.DataFrame, date, list[str]]:
    """The labelled rows from the backtest start, and no earlier than ``purge_gap`` market
    days after the last row the model learned from."""
    import polars as pl

    warnings: list[str] = []
    calendar = sorted(set(ohlcv.get_column("date").to_list()))
    start = backtest_start
    train_end = _train_end(manifest)
    if train_end is None:
        warnings.append(
            "The model's manifest does not say which dates it learned from: these rows may "
            "include its training data, and its metrics may be optimistic"
        )
    else:
        last_seen = bisect_right(calendar, date.fromisoformat(train_end)) - 1
        first_unseen = last_seen + purge_gap + 1
        unseen = calendar[first_unseen] if first_unseen < len(calendar) else None
        if unseen is None:
            return table.clear(), calendar[-1], warnings
        if unseen > start:
            warnings.append(
                f"Rows before {unseen} are left out: the model learned from data up to "
                f"{train_end} (plus a {purge_gap}-day purge gap)"
            )
            start = unseen
    rows = table.filter(pl.col("date") >= start).sort("ticker", "date")
    return rows, start, warnings


def _compare(
    settings: Settings,
    store: ModelStore,
    target: str,
    version: str | None,
    ohlcv: pl.DataFrame,
    rows: pl.DataFrame,
    proba: Any,
    horizon: int,
    warnings: list[str],
) -> tuple[dict[str, Any] | None, str | None]:
    """Production on the same rows, when the model validated is another one."""
    from marketpredictor_train.validation.backtest import compare_with_production

    if target == "production":
        return None, version
    try:
        production = store.load_production()
    except MptrainError as exc:
        warnings.append(f"The production model could not be read ({exc.message})")
        return None, None
    if production is None:
        return None, None
    production_version = production.manifest.get("version")
    if production_version == version:
        return None, production_version
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
        warnings.append(f"The production model could not be scored ({exc.message})")
        return None, production_version
    warnings.extend(comparison.pop("warnings"))
    return comparison, production_version


def _report_folder(
    settings: Settings, store: ModelStore, version: str | None, path: Path, run_id: str
) -> Path:
    """--report-dir, else models/reports/<version>/validate_<UTC time>/ for a version of
    this store, else logs/reports/validate_<UTC time>_<file name>/."""
    from marketpredictor_train.store import is_version
    from marketpredictor_train.validation.stage import REPORTS_DIR

    if settings.report_dir is not None:
        return Path(settings.report_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    if version and is_version(version) and version in store.version_names():
        return store.models_dir / REPORTS_DIR / version / f"validate_{stamp}_{run_id}"
    return Path(settings.logs_dir) / REPORTS_DIR / f"validate_{stamp}_{path.stem}_{run_id}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"
