"""Results of library operations: frozen values the CLI renders, and one JSON envelope for
all of them (``--output-json``, ``models-list --json``, ``rollback --json``, ``data ... --json``).

Every document has the same head: ``schema_version``, ``command``, ``status``,
``exit_code``, ``warnings``, ``error`` (null, or ``{type, message, hint}`` on failure),
followed by the command's own fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from marketpredictor_train.errors import EXIT_SUCCESS, MptrainError
from marketpredictor_train.redact import redact

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from marketpredictor_train.data.inventory import CacheInventory
    from marketpredictor_train.data.loader import LoadedData
    from marketpredictor_train.data.yahoo import RefreshReport
    from marketpredictor_train.store.history import PromotionRecord
    from marketpredictor_train.store.hooks import HookOutcome
    from marketpredictor_train.store.store import StoredModel, UnreadableFile

    # The `X as X` names are re-exported for type hints of the CLI, which imports only
    # api, config, errors and results.
    from marketpredictor_train.tracking.registry import RegistryStatus as RegistryStatus
    from marketpredictor_train.tuning.results import TuningOutcome
    from marketpredictor_train.validation.backtest import ValidationReport as ValidationReport
    from marketpredictor_train.validation.intervals import Interval as Interval

SCHEMA_VERSION = 1


def envelope(
    command: str,
    *,
    status: str,
    exit_code: int,
    warnings: tuple[str, ...] | list[str] = (),
    error: MptrainError | None = None,
) -> dict[str, Any]:
    """The head every JSON document starts with."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "status": status,
        "exit_code": exit_code,
        "warnings": [redact(w) for w in warnings],
        "error": None
        if error is None
        else {"type": type(error).__name__, "message": error.message, "hint": error.hint},
    }


def failure_document(command: str, exc: MptrainError, *, duration_s: float) -> dict[str, Any]:
    """The document of a command that stopped with an error. When the error carries what
    the command did anyway (a rollback whose post-promotion command failed), its fields
    are kept."""
    done = getattr(exc, "result", None)
    return {
        **envelope(command, status="failed", exit_code=exc.exit_code, error=exc),
        "promoted": False,
        "version": None,
        **(done.payload() if isinstance(done, Result) else {}),
        "duration_s": round(duration_s, 3),
    }


class Result:
    """A command's result: ``to_dict`` is the envelope followed by ``payload()``."""

    command: ClassVar[str]
    status: str
    exit_code: int
    warnings: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            **envelope(
                self.command, status=self.status, exit_code=self.exit_code, warnings=self.warnings
            ),
            **self.payload(),
        }


def _registry(status: RegistryStatus | None) -> dict[str, Any] | None:
    return None if status is None else status.to_dict()


def _fields(obj: Any, *skip: str) -> dict[str, Any]:
    """A dataclass's own fields (shallow), without the envelope's and ``skip``."""
    left_out = {"status", "exit_code", "warnings", *skip}
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in left_out}


@dataclass(frozen=True)
class TrainResult(Result):
    """What one `mptrain train` did."""

    command: ClassVar[str] = "train"

    status: str  # "promoted" | "not_promoted" | "dry_run" | "not_validated"
    exit_code: int
    promoted: bool
    passed_validation: bool
    reason: str
    version: str | None
    model_path: str | None
    model_type: str
    params: dict[str, Any]
    param_source: str
    metrics: dict[str, Any]
    production_version: str | None
    production_metrics: dict[str, Any] | None
    thresholds: dict[str, float]
    primary_metric: str
    forced: bool
    dry_run: bool
    n_train: int
    n_test: int
    n_features: int
    data_window: dict[str, Any]
    dropped_tickers: dict[str, str]
    timings: dict[str, float]
    duration_s: float
    run_id: str
    mlflow_run_id: str | None
    warnings: tuple[str, ...] = ()
    # The backtest in full (interval, baselines, trading view, per ticker, comparison);
    # None when validation was skipped.
    validation: ValidationReport | None = None
    skipped_validation: bool = False
    refit: bool = False
    metrics_of: str = "the saved model, on the backtest"
    report_dir: str | None = None
    report_files: tuple[str, ...] = ()
    # The MLflow Model Registry after the run; None without MLflow, on a dry run, or
    # when the registry could not be reached (then a warning says so).
    registry: RegistryStatus | None = None

    def payload(self) -> dict[str, Any]:
        doc = _fields(self, "validation")
        doc["report_files"] = list(self.report_files)
        doc["validation"] = None if self.validation is None else self.validation.to_dict()
        doc["registry"] = _registry(self.registry)
        return doc


@dataclass(frozen=True)
class BacktestResult(Result):
    """What one `mptrain backtest` replayed: per step the model trained then, the gate's
    decision and each policy on the rows up to the next step; and the summary over every
    step (``summary.policies`` keyed gated, always_retrain, never_retrain, always_up,
    yesterday; ``summary.gated_minus_always_up``)."""

    command: ClassVar[str] = "backtest"

    status: str  # "completed"
    exit_code: int
    model_type: str
    every: str
    workers: int
    data_window: dict[str, Any]
    steps: list[dict[str, Any]]
    summary: dict[str, Any]
    cache_dir: str
    cached_steps: int
    computed_steps: int
    report_dir: str | None
    report_files: tuple[str, ...]
    timings: dict[str, float]
    duration_s: float
    run_id: str
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        doc = _fields(self)
        doc["report_files"] = list(self.report_files)
        doc["notes"] = list(self.notes)
        return doc


@dataclass(frozen=True)
class ValidateResult(Result):
    """What one `mptrain validate` found."""

    command: ClassVar[str] = "validate"

    status: str  # "passed" | "failed"
    exit_code: int
    passed: bool
    reason: str
    target: str  # "production" | "version" | "model_file"
    version: str | None
    model_path: str
    model_type: str | None
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    primary_metric: str
    production_version: str | None
    production_metrics: dict[str, Any] | None
    n_test: int
    data_window: dict[str, Any]
    validation: ValidationReport
    report_dir: str | None
    report_files: tuple[str, ...]
    duration_s: float
    run_id: str
    warnings: tuple[str, ...] = ()
    mlflow_run_id: str | None = None
    registry: RegistryStatus | None = None

    def payload(self) -> dict[str, Any]:
        doc = _fields(self, "validation")
        doc["report_files"] = list(self.report_files)
        doc["validation"] = self.validation.to_dict()
        doc["registry"] = _registry(self.registry)
        return doc


@dataclass(frozen=True)
class PredictResult(Result):
    """What one `mptrain predict` predicted: P(up) per ticker and date, and which model on
    which data said so."""

    command: ClassVar[str] = "predict"

    status: str  # "predicted"
    exit_code: int
    target: str  # "production" | "version" | "model_file"
    version: str | None
    model_path: str
    model_type: str
    horizon: int
    decision_threshold: float
    date: str | None  # the date predicted (ISO); None with --all-dates
    all_dates: bool
    # ticker, date, probability_up, prediction ("up" | "down"), sorted by ticker and date
    predictions: pl.DataFrame = field(compare=False, repr=False)
    output: str | None
    data_window: dict[str, Any]
    dropped_tickers: dict[str, str]
    duration_s: float
    run_id: str
    warnings: tuple[str, ...] = ()

    @property
    def n_predictions(self) -> int:
        return self.predictions.height

    def records(self) -> list[dict[str, Any]]:
        """The predictions as JSON-ready rows (dates as ISO text)."""
        return [
            {**row, "date": row["date"].isoformat()}
            for row in self.predictions.iter_rows(named=True)
        ]

    def payload(self) -> dict[str, Any]:
        doc = _fields(self, "predictions")
        doc["n_predictions"] = self.n_predictions
        doc["predictions"] = self.records()
        return doc


@dataclass(frozen=True)
class OptimizeResult(Result):
    """What one `mptrain optimize` did; the tuning outcome's fields are at the top level."""

    command: ClassVar[str] = "optimize"

    status: str  # "completed"
    exit_code: int
    tuning: TuningOutcome
    params_file: str | None
    data_window: dict[str, Any]
    n_train: int
    timings: dict[str, float]
    duration_s: float
    run_id: str
    warnings: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        tuning = asdict(self.tuning)
        tuning.pop("warnings")
        tuning.pop("duration_s")
        return {**tuning, **_fields(self, "tuning")}


@dataclass(frozen=True)
class RollbackResult(Result):
    """A rollback: the history record (None when the version was production already and
    nothing changed), the model in production, and what the post-promotion command did."""

    command: ClassVar[str] = "rollback"

    record: PromotionRecord | None
    model: StoredModel
    hook: HookOutcome | None
    status: str = "rolled_back"  # or "unchanged"
    exit_code: int = EXIT_SUCCESS
    warnings: tuple[str, ...] = ()
    registry: RegistryStatus | None = None

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def previous_version(self) -> str | None:
        return self.model.version if self.record is None else self.record.from_version

    def payload(self) -> dict[str, Any]:
        return {
            "action": "none" if self.record is None else self.record.action,
            "version": self.version,
            "previous_version": self.previous_version,
            "record": None if self.record is None else self.record.to_dict(),
            "model": self.model.summary(),
            "hook": self.hook.to_dict() if self.hook is not None and self.hook.ran else None,
            "registry": _registry(self.registry),
        }


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed and what it kept."""

    keep: int
    removed: tuple[str, ...]
    kept: tuple[str, ...]  # non-production versions left, newest first
    production: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep": self.keep,
            "removed": list(self.removed),
            "kept": list(self.kept),
            "production": self.production,
        }


@dataclass(frozen=True)
class ModelsListing(Result):
    """The store at one moment: versions newest first, production, history oldest first."""

    command: ClassVar[str] = "models-list"

    models_dir: Path
    models: tuple[StoredModel, ...]
    production: StoredModel | None
    production_error: str | None
    history: tuple[PromotionRecord, ...]
    unreadable: tuple[UnreadableFile, ...]
    pruned: PruneResult | None = None
    status: str = "listed"
    exit_code: int = EXIT_SUCCESS
    warnings: tuple[str, ...] = ()

    @property
    def production_recorded(self) -> bool:
        """False when production was changed outside mptrain (e.g. a manual ``cp``) since
        the last recorded promotion."""
        if self.production is None:
            return True
        return bool(self.history) and self.history[-1].to_version == self.production.version

    def payload(self) -> dict[str, Any]:
        return {
            "models_dir": str(self.models_dir),
            "production": self.production.summary() if self.production else None,
            "production_error": self.production_error,
            "production_recorded": self.production_recorded,
            "models": [m.summary() for m in self.models],
            "unreadable": [{"path": str(u.path), "reason": u.reason} for u in self.unreadable],
            "history": [r.to_dict() for r in self.history],
            "pruned": self.pruned.to_dict() if self.pruned else None,
        }


@dataclass(frozen=True)
class DataFetchResult(Result):
    """What `mptrain data fetch` did to the cache."""

    command: ClassVar[str] = "data fetch"

    report: RefreshReport
    cache_dir: str
    status: str = "fetched"
    exit_code: int = EXIT_SUCCESS
    warnings: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {"cache_dir": self.cache_dir, **self.report.to_dict()}


@dataclass(frozen=True)
class DataInfoResult(Result):
    """What the market-data cache holds (`mptrain data info`)."""

    command: ClassVar[str] = "data info"

    inventory: CacheInventory
    status: str = "listed"
    exit_code: int = EXIT_SUCCESS
    warnings: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return self.inventory.to_dict()


@dataclass(frozen=True)
class DataCheckResult(Result):
    """A data source loaded through every input check (`mptrain data check`)."""

    command: ClassVar[str] = "data check"

    loaded: LoadedData
    tickers: list[dict[str, Any]] = field(default_factory=list)  # per ticker: rows, first, last
    status: str = "passed"
    exit_code: int = EXIT_SUCCESS
    warnings: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "source": loaded.source,
            "rows": loaded.rows,
            "start": loaded.start.isoformat(),
            "end": loaded.end.isoformat(),
            "tickers": [
                {**s, "first": str(s["first"]), "last": str(s["last"])} for s in self.tickers
            ],
            "dropped": dict(loaded.dropped),
        }
