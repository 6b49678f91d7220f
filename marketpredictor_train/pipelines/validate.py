"""`mptrain validate`: backtest a saved model (production, a version, or a model file) on
the latest data, with the same metrics, thresholds and report as `train`.

Only rows the model has never learned from are scored: rows in the backtest window that
also come after the model's own training data (its manifest's ``train_end``) plus the
purge gap. A scheduled job can run it between retrainings to catch decay.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import (
    EXIT_SUCCESS,
    EXIT_VALIDATION_FAILED,
    ConfigError,
    DataError,
    StoreError,
)
from marketpredictor_train.pipelines.common import (
    RunContext,
    data_window,
    logs_reports_dir,
    membership,
    run_report_folder,
    score_champion,
    universe_notes,
    write_validation_report,
)
from marketpredictor_train.results import ValidateResult
from marketpredictor_train.store.names import REPORTS_DIR_NAME

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.dataset import ScoringRows
    from marketpredictor_train.features import FeatureSpec
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
    from marketpredictor_train.models.trained import TrainedModel
    from marketpredictor_train.store import ModelStore
    from marketpredictor_train.validation.backtest import evaluate
    from marketpredictor_train.validation.gate import skill_metric_for, verdict

    run = RunContext()
    with run.bound():
        store = ModelStore(settings.models_dir)
        target, target_file, path = _target(store, version, model_file)
        model = TrainedModel.from_model_file(target_file, source=str(path))
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

        loaded, scoring = _scoring_rows(settings, spec, manifest, horizon, progress)
        rows, train_end = scoring.rows, _train_end(manifest)
        warnings = list(scoring.warnings)
        proba = model.predict_proba(rows, spec)
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
            window={
                **scoring.window.to_dict(),
                "backtest_start": scoring.first_date.isoformat(),
                "train_end": train_end,
            },
            version=model.version,
            model_type=manifest.get("model_type"),
            feature_importance=manifest.get("feature_importance"),
            base_rate=label.get("train_up_rate"),
            gate_level=settings.gate_level,
            skill_metric=skill_metric_for(settings.primary_metric),
        )
        warnings.extend(report.warnings)

        # Production on the same rows, when the model validated is another one.
        if target == "production":
            champion_version, comparison = model.version, None
        else:
            champion = score_champion(
                settings,
                store,
                loaded.frame,
                rows,
                proba,
                horizon=horizon,
                challenger_version=model.version,
            )
            champion_version, comparison = champion.version, champion.comparison
            warnings.extend(champion.warnings)
        report = dataclasses.replace(
            report,
            comparison=comparison,
            production_version=champion_version,
            warnings=tuple(warnings),
            notes=(*report.notes, *universe_notes(settings)),
        )
        metrics = report.metrics
        log.info(
            f"Validation complete - Accuracy: {metrics['accuracy']:.2%}",
            metrics={k: metrics[k] for k in ("accuracy", "precision", "recall", "f1")},
        )
        decision = verdict(
            metrics, settings.thresholds, skill=report.skill, skill_gate=settings.skill_gate
        )
        (log.info if decision.passed else log.warning)(decision.reason)
        status = "passed" if decision.passed else "failed"

        title = "Validation of " + (f"version {model.version}" if model.version else path.name)
        folder, report_files, report_warning = write_validation_report(
            report,
            _report_folder(settings, store, model.version, path, run.run_id),
            title=title,
            decision={
                "status": status,
                "passed": decision.passed,
                "reason": decision.reason,
                "target": target,
            },
        )
        if report_warning:
            warnings.append(report_warning)

        mlflow_run_id = registry_status = None
        if settings.mlflow:
            from marketpredictor_train.tracking import log_validation_run, report_metrics

            mlflow_run_id, tracking_warning = log_validation_run(
                settings,
                run_id=run.run_id,
                target=target,
                version=model.version,
                model_type=manifest.get("model_type"),
                metrics=metrics,
                status=status,
                reason=decision.reason,
                extra_metrics=report_metrics(report),
                artifacts=report_files,
            )
            if tracking_warning:
                warnings.append(tracking_warning)
            else:  # a production model changed outside mptrain (a manual cp) moves the alias
                from marketpredictor_train.tracking import Registry

                registry = Registry(settings)
                registry_status = registry.sync(store)
                if registry.warning:
                    warnings.append(registry.warning)

        return ValidateResult(
            status=status,
            exit_code=EXIT_SUCCESS if decision.passed else EXIT_VALIDATION_FAILED,
            passed=decision.passed,
            reason=decision.reason,
            target=target,
            version=model.version,
            model_path=str(path),
            model_type=manifest.get("model_type"),
            metrics=dict(metrics),
            thresholds=dict(settings.thresholds),
            primary_metric=settings.primary_metric,
            production_version=champion_version,
            production_metrics=None if comparison is None else dict(comparison.production),
            n_test=rows.height,
            data_window=data_window(loaded, report.window),
            validation=report,
            report_dir=None if folder is None else str(folder),
            report_files=tuple(str(p) for p in report_files),
            duration_s=run.elapsed(),
            run_id=run.run_id,
            warnings=tuple(warnings),
            mlflow_run_id=mlflow_run_id,
            registry=registry_status,
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


def _report_folder(
    settings: Settings, store: ModelStore, version: str | None, path: Path, run_id: str
) -> Path:
    """--report-dir, else models/reports/<version>/validate_<UTC time>_<run>/ for a version
    of this store, else logs/reports/validate_<UTC time>_<file name>_<run>/."""
    from marketpredictor_train.store import is_version

    if settings.report_dir is not None:
        return Path(settings.report_dir)
    if version and is_version(version) and version in store.version_names():
        return run_report_folder(store.models_dir / REPORTS_DIR_NAME / version, "validate", run_id)
    return run_report_folder(logs_reports_dir(settings), "validate", run_id, path.stem)


def _scoring_rows(
    settings: Settings,
    spec: FeatureSpec,
    manifest: dict[str, Any],
    horizon: int,
    progress: ProgressCallback | None,
) -> tuple[LoadedData, ScoringRows]:
    """The latest data and the rows of its backtest window the model never learned from;
    DataError (exit 1) when none remain."""
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset import MIN_BACKTEST_ROWS, scoring_rows
    from marketpredictor_train.features import warmup_rows

    loaded = load_ohlcv(
        settings, min_history=warmup_rows(spec) + horizon + MIN_BACKTEST_ROWS, progress=progress
    )
    train_end = _train_end(manifest)
    scoring = scoring_rows(
        loaded.frame,
        spec,
        horizon=horizon,
        backtest_months=settings.backtest_months,
        purge_gap=horizon + settings.embargo_days,
        train_end=None if train_end is None else date.fromisoformat(train_end),
        membership=membership(settings),
    )
    rows = scoring.rows
    if rows.height == 0:
        raise DataError(
            "Validation failed - no backtest rows after the model's own training data "
            f"(it learned from rows up to {train_end}; the data ends {loaded.end})",
            hint="Validate on newer data, or widen the window with --backtest-months.",
        )
    if rows.height < MIN_BACKTEST_ROWS:
        warning = f"Only {rows.height} backtest rows: the metrics are too noisy to mean much"
        scoring = dataclasses.replace(scoring, warnings=(*scoring.warnings, warning))
    return loaded, scoring
