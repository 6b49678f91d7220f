"""`mptrain backtest`: replay the retrain-and-promote policy over past years. At each step
date the model is trained exactly as `mptrain train` would have trained it on the data
known then, the gate decides against the champion of that time, and the model in
production is scored on the rows up to the next step, beside the reference policies
(always promote, never retrain, always up, yesterday's direction). Nothing is written to
the model store.

Each step's fit depends only on its date, so the fits run in parallel processes and are
kept in a cache; the gate decisions, where each depends on the champion the earlier
decisions left, are then replayed in order from the cached fits, without refitting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import time
from bisect import bisect_left
from collections.abc import Mapping, MutableMapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import EXIT_SUCCESS, ConfigError, MptrainError
from marketpredictor_train.pipelines.common import (
    EVALUATION_MODULES,
    REPORT_MODULES,
    RunContext,
    build_run_dataset,
    champion_on_rows,
    feature_spec,
    import_in_background,
    logs_reports_dir,
    membership,
    min_history,
    model_type_and_device,
    run_report_folder,
)
from marketpredictor_train.progress import StepTimer, report
from marketpredictor_train.results import BacktestResult

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import LoadedData
    from marketpredictor_train.features import FeatureSpec
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.models.calibration import Calibrator
    from marketpredictor_train.pipelines.common import ChampionScore
    from marketpredictor_train.progress import ProgressCallback
    from marketpredictor_train.validation.backtest import SkillEvidence

log = structlog.get_logger(__name__)

POLICIES = ("gated", "always_retrain", "never_retrain", "always_up", "yesterday")
NAIVE_POLICIES = ("always_up", "yesterday")
DEFAULT_EVERY = "1w"
DEFAULT_YEARS = 2
# The data loaded for a backtest: enough for the period before the first step.
LOAD_PERIOD = "10y"
CACHE_FORMAT = 1
LEVEL = 0.95
_EVERY = re.compile(r"(\d+)([dwm])")
_MAX_EVERY_DAYS = 93  # 3m, counting months of 31 days
_UNIT_DAYS = {"d": 1, "w": 7, "m": 31}
NO_MODEL_NOTE = (
    "Before the gate promotes a first model there is none in production: the gated policy "
    "then calls every row up (as always-up), with the training rows' up-rate as its P(up)."
)


@dataclass(frozen=True)
class Every:
    """The retraining interval: ``count`` days, weeks or months."""

    count: int
    unit: str  # "d" | "w" | "m"

    def after(self, start: date, steps: int) -> date:
        """The calendar date ``steps`` intervals after ``start``."""
        n = self.count * steps
        if self.unit == "d":
            return start + timedelta(days=n)
        if self.unit == "w":
            return start + timedelta(weeks=n)
        month = start.month - 1 + n
        year, month = start.year + month // 12, month % 12 + 1
        for day in range(start.day, 27, -1):
            try:
                return date(year, month, day)
            except ValueError:
                continue
        return date(year, month, min(start.day, 28))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_every(text: str) -> Every:
    """``1w``, ``10d``, ``3m``...: from 1d to 3m; ConfigError (exit 3) otherwise."""
    match = _EVERY.fullmatch(str(text).strip().lower())
    hint = (
        "Give a number and a unit: d (calendar days), w (weeks) or m (months), from 1d to "
        "3m, e.g. --every 1w."
    )
    if match is None:
        raise ConfigError(f"--every {text!r} is not a retraining interval like 1w", hint=hint)
    every = Every(int(match.group(1)), match.group(2))
    if every.count < 1 or every.count * _UNIT_DAYS[every.unit] > _MAX_EVERY_DAYS:
        raise ConfigError(f"--every {text!r} is outside 1d..3m", hint=hint)
    return every


def step_dates(calendar: Sequence[date], start: date, every: Every, last: date) -> list[date]:
    """The trading days on which a retrain happens: the first trading day on or after
    ``start`` plus each interval, up to ``last`` (the last day with a label)."""
    steps: list[date] = []
    k = 0
    while True:
        target = every.after(start, k)
        k += 1
        i = bisect_left(calendar, target)
        if i >= len(calendar) or calendar[i] > last:
            return steps
        if not steps or calendar[i] > steps[-1]:
            steps.append(calendar[i])


# ----------------------------------------------------------------------------- one step


@dataclass(frozen=True)
class StepFit:
    """One step's fit as `train` makes it on the data before ``day``, and what the replay
    needs of it: the backtest figures the gate reads, the model itself (to score it as a
    champion on later steps' backtest rows), its backtest rows and features, and its
    P(up) on every scoring row."""

    day: date
    window: dict[str, Any]
    n_train: int
    n_test: int
    metrics: dict[str, Any]
    skill: dict[str, Any] | None
    base_rate: float
    params: dict[str, Any]
    param_source: str
    model_type: str
    payload: bytes = field(repr=False)
    calibration: dict[str, Any] | None
    valid_tickers: np.ndarray = field(repr=False)
    valid_dates: np.ndarray = field(repr=False)
    valid_labels: np.ndarray = field(repr=False)
    valid_x: np.ndarray = field(repr=False)
    valid_proba: np.ndarray = field(repr=False)
    score_proba: np.ndarray = field(repr=False)
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def version(self) -> str:
        return self.day.isoformat()

    @property
    def train_end(self) -> str:
        return str(self.window["train_end"])

    def skill_evidence(self) -> SkillEvidence | None:
        from marketpredictor_train.validation.backtest import SkillEvidence

        if self.skill is None:
            return None
        doc = dict(self.skill)
        doc["difference_ci"] = tuple(doc["difference_ci"])
        return SkillEvidence(**doc)

    def validation_rows(self) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        return pl.DataFrame(
            {
                "ticker": self.valid_tickers.astype(str),
                "date": self.valid_dates,
                "label": self.valid_labels,
                "_row": np.arange(self.valid_labels.size),
            }
        )

    def to_bytes(self) -> bytes:
        import numpy as np

        meta = {
            "format": CACHE_FORMAT,
            "day": self.day.isoformat(),
            "window": self.window,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "metrics": self.metrics,
            "skill": self.skill,
            "base_rate": self.base_rate,
            "params": self.params,
            "param_source": self.param_source,
            "model_type": self.model_type,
            "calibration": self.calibration,
            "warnings": list(self.warnings),
            "seconds": self.seconds,
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.array(json.dumps(meta, default=str)),
            payload=np.frombuffer(self.payload, dtype=np.uint8),
            valid_tickers=self.valid_tickers.astype(str),
            valid_dates=self.valid_dates.astype("datetime64[D]"),
            valid_labels=self.valid_labels,
            valid_x=self.valid_x,
            valid_proba=self.valid_proba,
            score_proba=self.score_proba,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> StepFit:
        import numpy as np

        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                raise ValueError(f"cache format {meta.get('format')}")
            return cls(
                day=date.fromisoformat(meta["day"]),
                window=meta["window"],
                n_train=int(meta["n_train"]),
                n_test=int(meta["n_test"]),
                metrics=meta["metrics"],
                skill=meta["skill"],
                base_rate=float(meta["base_rate"]),
                params=meta["params"],
                param_source=meta["param_source"],
                model_type=meta["model_type"],
                payload=arrays["payload"].tobytes(),
                calibration=meta["calibration"],
                valid_tickers=arrays["valid_tickers"],
                valid_dates=arrays["valid_dates"],
                valid_labels=arrays["valid_labels"],
                valid_x=arrays["valid_x"],
                valid_proba=arrays["valid_proba"],
                score_proba=arrays["score_proba"],
                warnings=tuple(meta["warnings"]),
                seconds=float(meta["seconds"]),
            )


@dataclass(frozen=True)
class _StepContext:
    """What every step's fit needs, sent once to each worker process."""

    settings: Settings
    loaded: LoadedData
    spec: FeatureSpec
    device: str
    score_x: np.ndarray  # features of the scoring rows (every row from the first step on)
    threads: int


_CONTEXT: _StepContext | None = None
_WARNINGS: list[str] = []


def _init_worker(context: _StepContext) -> None:
    """Set a worker process up: its share of the cores for the model libraries (set
    before any of them loads), and logging that keeps a step's warnings for its result."""
    global _CONTEXT
    threads = str(context.threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = threads
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["POLARS_MAX_THREADS"] = threads
    _CONTEXT = context
    _capture_warnings()


def _capture_warnings() -> None:
    import logging

    def keep(_: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        if method in ("warning", "error", "critical"):
            _WARNINGS.append(str(event.get("event")))
        raise structlog.DropEvent

    structlog.configure(
        processors=[keep],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )


# A step's cache bytes, or its MptrainError as (class name, message, hint).
_Outcome = tuple[bytes | None, tuple[str, str, str | None] | None]


def _fit_in_worker(day: date) -> _Outcome:
    assert _CONTEXT is not None, "worker not initialised"
    _WARNINGS.clear()
    try:
        return fit_step(_CONTEXT, day).to_bytes(), None
    except MptrainError as exc:
        return None, (type(exc).__name__, exc.message, exc.hint)


def fit_step(context: _StepContext, day: date) -> StepFit:
    """Train as `mptrain train` would on the data known before ``day`` (its own period
    window, features, purge, parameters, calibration and backtest), and score the model
    on every scoring row."""
    from marketpredictor_train.data.loader import loaded_before
    from marketpredictor_train.pipelines.train import backtest_model, fit_model, train_up_rate
    from marketpredictor_train.tuning import choose_params

    started = time.perf_counter()
    settings = context.settings
    model_cls, _ = model_type_and_device(settings)
    timer = StepTimer()
    loaded = loaded_before(
        context.loaded, day, settings, min_history=min_history(settings, context.spec)
    )
    # The look-ahead check reads the feature spec, the same at every step: the first step
    # ran it (_check_first_step), before any process started.
    dataset = build_run_dataset(settings, loaded, context.spec, timer, None, check_lookahead=False)
    params, param_source = choose_params(
        settings, model_cls, dataset, device=context.device, timer=timer
    )
    model, calibrator = fit_model(settings, model_cls, params, context.device, dataset)
    # a step keeps its metrics and skill evidence; the Sharpe intervals of its trading
    # view would be dropped, and their bootstrap costs a tenth of a second per step
    backtest, proba = backtest_model(
        settings, model, calibrator, dataset, loaded, trading_intervals=False
    )
    rows = dataset.backtest
    valid_x, valid_y = dataset.xy(rows)
    return StepFit(
        day=day,
        window=dataset.window.to_dict(),
        n_train=dataset.train.height,
        n_test=rows.height,
        metrics=dict(backtest.metrics),
        skill=None if backtest.skill is None else dataclasses.asdict(backtest.skill),
        base_rate=train_up_rate(dataset),
        params=dict(model.params),
        param_source=param_source,
        model_type=model.name,
        payload=model.to_bytes(),
        calibration=None if calibrator is None else calibrator.to_dict(),
        valid_tickers=rows.get_column("ticker").to_numpy().astype(str),
        valid_dates=rows.get_column("date").to_numpy(),
        valid_labels=valid_y,
        valid_x=valid_x,
        valid_proba=proba,
        score_proba=_apply(model, calibrator, context.score_x),
        warnings=tuple(dict.fromkeys(_WARNINGS)),
        seconds=round(time.perf_counter() - started, 3),
    )


def _apply(model: ModelType, calibrator: Calibrator | None, x: np.ndarray) -> np.ndarray:
    import numpy as np

    if x.shape[0] == 0:
        return np.zeros(0)
    raw = model.predict_proba(x)
    return raw if calibrator is None else calibrator.apply(raw)


# ----------------------------------------------------------------------------- cache


class StepCache:
    """Finished steps, one file each, under a folder named after the fingerprint of the
    settings and data they were fitted with: a step is never fitted twice for the same."""

    def __init__(self, folder: Path, *, scored_rows: int) -> None:
        self.folder = folder
        self.scored_rows = scored_rows

    def path(self, day: date) -> Path:
        return self.folder / f"step_{day:%Y%m%d}.npz"

    def load(self, day: date) -> StepFit | None:
        path = self.path(day)
        try:
            fit = StepFit.from_bytes(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:  # torn or stale: fit it again
            log.warning("A cached backtest step is unreadable; fitting it again", path=str(path))
            log.debug("unreadable cached step", error=str(exc))
            return None
        if fit.day != day or fit.score_proba.size != self.scored_rows:
            log.warning("A cached backtest step does not match; fitting it again", path=str(path))
            return None
        return fit

    def save(self, data: bytes, day: date) -> None:
        from marketpredictor_train.fileio import atomic_write_bytes

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path(day), data)
        except OSError as exc:
            log.warning(f"The backtest step {day} could not be cached in {self.folder}: {exc}")


# Settings that change what a step's fit holds (the gate's thresholds, margin and switch
# do not: they are replayed from the cache).
_FIT_SETTINGS = (
    "source",
    "tickers",
    "period",
    "features",
    "horizon",
    "dead_band",
    "model_type",
    "seed",
    "calibration",
    "universe",
    "backtest_months",
    "embargo_days",
    "cv_folds",
    "gate_level",
    "primary_metric",
)


def fingerprint(settings: Settings, loaded: LoadedData, device: str) -> str:
    """A digest of what the steps' fits depend on: the fit settings, the resolved device,
    the data, the index membership, the tuned-parameters file and the library versions."""
    from marketpredictor_train.pipelines.train import _library_versions
    from marketpredictor_train.tuning.best_params import best_params_path

    digest = hashlib.sha256()
    doc = settings.model_dump(mode="json", include=set(_FIT_SETTINGS))
    doc.update(device=device, format=CACHE_FORMAT, versions=_library_versions())
    digest.update(json.dumps(doc, sort_keys=True, default=str).encode())
    digest.update(loaded.frame.hash_rows(seed=0).to_numpy().tobytes())
    for path in (settings.universe, best_params_path(settings)):
        if path is not None and Path(path).is_file():
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:20]


def cache_folder(settings: Settings, cache_dir: Path | None, key: str) -> Path:
    """``cache_dir/<key>``, else beside the model store: ``<models_dir>-backtest-cache/``."""
    if cache_dir is None:
        models = Path(settings.models_dir)
        cache_dir = models.with_name(models.name + "-backtest-cache")
    return Path(cache_dir).expanduser() / key


# ----------------------------------------------------------------------------- fits


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _fit_all(
    context: _StepContext,
    days: list[date],
    cache: StepCache,
    workers: int,
    progress: ProgressCallback | None,
) -> tuple[dict[date, StepFit], set[date]]:
    """Every step's fit, and the days found in the cache: the others are fitted in
    ``workers`` processes, each result cached as it arrives, so an interrupted backtest
    resumes where it stopped."""
    import multiprocessing

    fits: dict[date, StepFit] = {}
    for day in days:
        cached = cache.load(day)
        if cached is not None:
            fits[day] = cached
    found = set(fits)
    todo = [d for d in days if d not in fits]
    total = len(days)
    report(progress, "backtest", len(fits), total, f"{len(fits)} cached, {len(todo)} to fit")
    if not todo:
        return fits, found
    log.info("Fitting backtest steps", steps=len(todo), cached=len(fits), workers=workers)
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(context,),
    )
    pending: dict[Future[_Outcome], date] = {}
    queue = iter(todo)
    try:
        while True:
            # one step per worker in flight: an interruption leaves only those to finish
            while len(pending) < workers and (next_day := next(queue, None)) is not None:
                pending[pool.submit(_fit_in_worker, next_day)] = next_day
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f]):
                day = pending.pop(future)
                data = _unwrap(future.result(), day)  # a step's error stops the backtest
                cache.save(data, day)
                fits[day] = StepFit.from_bytes(data)
                report(progress, "backtest", len(fits), total, f"step {day} fitted")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _keep_finished(pending, cache)
    return fits, found


def _keep_finished(pending: dict[Future[_Outcome], date], cache: StepCache) -> None:
    """After an interruption: cache the steps that finished while the pool shut down."""
    for future, day in pending.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            data, error = future.result()
            if data is not None and error is None:
                cache.save(data, day)


def _unwrap(outcome: _Outcome, day: date) -> bytes:
    """A worker's step, or its error raised again here with its class, message and hint."""
    from marketpredictor_train import errors

    data, error = outcome
    if error is None:
        assert data is not None
        return data
    name, message, hint = error
    cls = getattr(errors, name, errors.MptrainError)
    raise cls(f"{message} (backtest step {day})", hint=hint)


# ----------------------------------------------------------------------------- replay


@dataclass
class _Replayed:
    """The gate replayed over the steps: per step the decision and who is in production."""

    decisions: list[Any]
    champions: list[int | None]  # index of the step whose model is production after it
    comparisons: list[dict[str, Any] | None]


def _replay_gate(
    settings: Settings, fits: list[StepFit], ohlcv: pl.DataFrame, models: _Models
) -> _Replayed:
    """The gate's decisions in order: each step's model against the then-champion (a model
    in memory, never the store), scored on the step's backtest rows it never saw."""
    from marketpredictor_train.pipelines.common import ChampionScore
    from marketpredictor_train.pipelines.train import gate_decision

    champion: int | None = None
    out = _Replayed([], [], [])
    for fit in fits:
        score = (
            ChampionScore(None, None)
            if champion is None
            else _champion_score(settings, fit, fits, champion, ohlcv, models)
        )
        decision = gate_decision(settings, fit.metrics, fit.skill_evidence(), score.comparison)
        if decision.promote:
            champion = len(out.decisions)
        out.decisions.append(decision)
        out.champions.append(champion)
        out.comparisons.append(None if score.comparison is None else score.comparison.to_dict())
    return out


def _champion_score(  # noqa: PLR0913 - the step, the champion and how to score it
    settings: Settings,
    fit: StepFit,
    fits: list[StepFit],
    champion: int,
    ohlcv: pl.DataFrame,
    models: _Models,
) -> ChampionScore:
    """The champion (step ``champion``'s model) on the step's backtest rows it never saw,
    as `train` scores the production model."""
    import numpy as np
    import polars as pl

    def scored(unseen: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        at = unseen.get_column("_row").to_numpy()
        return np.arange(at.size), models.proba(champion, fit.valid_x[at])

    return champion_on_rows(
        settings,
        _manifest(fits[champion], settings.horizon),
        scored,
        ohlcv.filter(pl.col("date") < fit.day),
        fit.validation_rows(),
        fit.valid_proba,
        horizon=settings.horizon,
    )


def _manifest(fit: StepFit, horizon: int) -> dict[str, Any]:
    """What the champion comparison reads of a model: as a stored manifest would say it."""
    return {
        "version": fit.version,
        "model_type": fit.model_type,
        "label": {"horizon": horizon},
        "data_window": {"train_end": fit.train_end},
    }


class _Models:
    """Step models loaded from their payloads on first use (to score a champion)."""

    def __init__(self, fits: list[StepFit], settings: Settings, device: str) -> None:
        self._fits = fits
        self._settings = settings
        self._device = device
        self._loaded: dict[int, tuple[ModelType, Calibrator | None]] = {}

    def proba(self, index: int, x: np.ndarray) -> np.ndarray:
        from marketpredictor_train.models.calibration import Calibrator
        from marketpredictor_train.models.registry import get_model_type

        if index not in self._loaded:
            fit = self._fits[index]
            model = get_model_type(fit.model_type).from_bytes(
                fit.payload, fit.params, device=self._device
            )
            calibrator = None if fit.calibration is None else Calibrator.from_dict(fit.calibration)
            self._loaded[index] = (model, calibrator)
        model, calibrator = self._loaded[index]
        return _apply(model, calibrator, x)


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Scored:
    """Each policy's calls and P(up) on every scoring row."""

    calls: dict[str, np.ndarray]
    proba: dict[str, np.ndarray | None]


def _policies(
    fits: list[StepFit],
    replayed: _Replayed,
    period: np.ndarray,
    yesterday: np.ndarray,
    positions: np.ndarray,
) -> _Scored:
    """The model each policy has in production during each step's period, applied to the
    period's rows (``period`` says which step's period each scoring row falls in;
    ``positions`` where the scoring rows are among the rows every step's model scored)."""
    import numpy as np

    from marketpredictor_train.validation.metrics import DECISION_THRESHOLD

    n = period.size
    proba = {name: np.zeros(n) for name in ("gated", "always_retrain", "never_retrain")}
    for k, fit in enumerate(fits):
        rows = period == k
        champion = replayed.champions[k]
        proba["gated"][rows] = (
            fit.base_rate if champion is None else fits[champion].score_proba[positions][rows]
        )
        proba["always_retrain"][rows] = fit.score_proba[positions][rows]
        proba["never_retrain"][rows] = fits[0].score_proba[positions][rows]
    calls = {name: (p >= DECISION_THRESHOLD).astype(int) for name, p in proba.items()}
    no_model = np.isin(period, [k for k, c in enumerate(replayed.champions) if c is None])
    calls["gated"][no_model] = 1
    calls["always_up"] = np.ones(n, dtype=int)
    calls["yesterday"] = yesterday.astype(int)
    return _Scored(calls, {**proba, "always_up": None, "yesterday": None})


def _summary_of(  # noqa: PLR0913 - the rows, every policy's calls and how to score them
    scored: _Scored,
    y: np.ndarray,
    tickers: np.ndarray,
    dates: np.ndarray,
    next_return: np.ndarray,
    *,
    settings: Settings,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each policy over every scoring row (accuracy with its day-level interval, log loss,
    the trading view's cumulative return, Sharpe and drawdown), and the gated policy
    minus always-up in a paired interval; plus the equity curves for the report."""
    from marketpredictor_train.validation.intervals import (
        confusion_indicators,
        metric_interval,
        paired_difference_interval,
    )
    from marketpredictor_train.validation.metrics import log_loss
    from marketpredictor_train.validation.trading import trading_view

    policies: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    horizon = settings.horizon
    for name in POLICIES:
        calls = scored.calls[name]
        interval = metric_interval(
            "accuracy", confusion_indicators(y, calls), dates, horizon=horizon, level=LEVEL
        )
        proba = scored.proba[name]
        view = trading_view(
            tickers,
            dates,
            calls,
            next_return,
            horizon=horizon,
            cost_per_trade=settings.cost_per_trade,
            level=LEVEL,
            seed=settings.seed,
        )
        policies[name] = {
            "accuracy": interval.estimate,
            "accuracy_ci": [interval.low, interval.high],
            "log_loss": None if proba is None else log_loss(y, proba),
            "cumulative_return": view.strategy["cumulative_return"],
            "sharpe": view.strategy["sharpe"],
            "max_drawdown": view.strategy["max_drawdown"],
            "n_rows": int(y.size),
            "n_days": interval.n_days,
        }
        curves[name] = (view.dates, view.strategy_equity)
    gated = confusion_indicators(y, scored.calls["gated"])
    differences = {}
    for name in POLICIES[1:]:
        diff = paired_difference_interval(
            "accuracy",
            gated,
            confusion_indicators(y, scored.calls[name]),
            dates,
            horizon=horizon,
            level=LEVEL,
        )
        differences[name] = {
            "metric": "accuracy",
            "difference": diff.estimate,
            "ci": [diff.low, diff.high],
            "level": LEVEL,
            "method": f"paired {diff.method}",
        }
    summary = {
        "policies": policies,
        "gated_minus_always_up": differences["always_up"],
        "gated_minus": differences,
        "level": LEVEL,
    }
    return summary, curves


def _step_rows(  # noqa: PLR0913 - the steps, the replay and each policy's calls on the rows
    fits: list[StepFit],
    replayed: _Replayed,
    scored: _Scored,
    y: np.ndarray,
    period: np.ndarray,
    dates: np.ndarray,
    curves: dict[str, Any],
    cached: set[date],
) -> list[dict[str, Any]]:
    import numpy as np

    from marketpredictor_train.validation.metrics import log_loss

    equity = {
        name: dict(zip(np.asarray(days, dtype="datetime64[D]").tolist(), values, strict=True))
        for name, (days, values) in curves.items()
    }
    out = []
    for k, fit in enumerate(fits):
        rows = period == k
        days = sorted(set(np.asarray(dates[rows], dtype="datetime64[D]").tolist()))
        champion = replayed.champions[k]
        decision = replayed.decisions[k]
        policies = {}
        for name in POLICIES:
            proba = scored.proba[name]
            policies[name] = {
                "accuracy": float(np.mean(scored.calls[name][rows] == y[rows]))
                if rows.any()
                else None,
                "log_loss": None
                if proba is None or not rows.any()
                else log_loss(y[rows], proba[rows]),
                "return": _period_return(equity[name], days),
            }
        metrics = fit.metrics
        out.append(
            {
                "date": fit.version,
                "last_scored_date": days[-1].isoformat() if days else None,
                "n_rows": int(rows.sum()),
                "n_train": fit.n_train,
                "n_test": fit.n_test,
                "train_end": fit.train_end,
                "backtest_start": str(fit.window.get("backtest_start")),
                "metrics": {
                    m: metrics.get(m)
                    for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
                },
                "passed": decision.passed,
                "promoted": decision.promote,
                "reason": decision.reason,
                "champion_version": None if champion is None else fits[champion].version,
                "comparison": replayed.comparisons[k],
                "cached": fit.day in cached,
                "fit_seconds": fit.seconds,
                "policies": policies,
            }
        )
    return out


def _period_return(equity: dict[date, float], days: list[date]) -> float | None:
    """Growth of the equity curve over ``days`` (a contiguous run of its days)."""
    if not days:
        return None
    ordered = sorted(equity)
    first = ordered.index(days[0])
    before = equity[ordered[first - 1]] if first > 0 else 1.0
    return float(equity[days[-1]] / before - 1.0)


# ----------------------------------------------------------------------------- backtest


def backtest(  # noqa: PLR0915 - the stages of one backtest, in order
    settings: Settings,
    *,
    start: date | str | None = None,
    every: str = DEFAULT_EVERY,
    workers: int | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Replay `train`'s weekly (``every``) retrain-and-promote policy from ``start``
    (default: two years before the last date) to the end of the data; see
    BacktestResult. Raises ConfigError (exit 3) for a bad interval, start or worker
    count, and DataError/TrainingError (exit 1) when a step has too little data."""
    import numpy as np

    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset import labelled_features, within_membership
    from marketpredictor_train.validation.backtest import price_context

    interval = parse_every(every)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: need at least 1", hint="Drop --workers.")
    # The replay decides like a scheduled `train`: no forced, skipped or refit promotions.
    settings = settings.model_copy(
        update={
            "dry_run": False,
            "force": False,
            "optimize": False,
            "skip_validation": False,
            "refit": False,
        }
    )
    run = RunContext()
    timer = run.timer
    with run.bound():
        model_cls, device = model_type_and_device(settings)
        spec = feature_spec(settings)
        with timer("data"):
            loaded = load_ohlcv(
                settings.model_copy(update={"period": LOAD_PERIOD}), progress=progress
            )
        calendar = sorted(loaded.frame.get_column("date").unique().to_list())
        # the last day whose label (horizon days later) is known
        horizon = settings.horizon
        last_labelled = calendar[-1 - horizon] if len(calendar) > horizon else None
        first_day = _start_date(start, loaded, last_labelled)
        steps = step_dates(calendar, first_day, interval, last_labelled or calendar[0])
        if not steps:
            raise ConfigError(
                f"--start {first_day} leaves no step: no trading day with a label from then on",
                hint=f"Start before {last_labelled}.",
            )
        with timer("features"):
            table = labelled_features(loaded.frame, spec, horizon=settings.horizon)
            rules = membership(settings)
            if rules is not None:
                table = within_membership(table, rules)
            # every labelled row is scored by each step's model (so a cached step serves
            # any --start); the replay reads the rows from the first step on
            everything = table
            positions = np.flatnonzero((everything.get_column("date") >= steps[0]).to_numpy())
            table = everything[positions]
        steps = _steps_with_rows(steps, table)
        period = (
            np.searchsorted(
                np.asarray(steps, dtype="datetime64[D]"),
                table.get_column("date").to_numpy().astype("datetime64[D]"),
                side="right",
            )
            - 1
        )
        n_workers = workers or usable_cores()
        context = _StepContext(
            settings=settings,
            loaded=loaded,
            spec=spec,
            device=device,
            score_x=everything.select(spec_columns(spec)).to_numpy(),
            threads=max(1, usable_cores() // n_workers),
        )
        key = fingerprint(settings, loaded, device)
        cache = StepCache(cache_folder(settings, cache_dir, key), scored_rows=everything.height)
        log.info(
            "Backtest started",
            steps=len(steps),
            first=str(steps[0]),
            last=str(steps[-1]),
            every=str(interval),
            workers=n_workers,
            cache=str(cache.folder),
        )
        _check_first_step(context, steps[0])
        import_in_background(_REPLAY_MODULES)
        with timer("fit"):
            by_day, cached = _fit_all(context, steps, cache, n_workers, progress)
        fits = [by_day[d] for d in steps]
        computed = len(fits) - len(cached)

        with timer("replay"):
            models = _Models(fits, settings, device)
            replayed = _replay_gate(settings, fits, loaded.frame, models)
            y = table.get_column("label").to_numpy().astype(int)
            ctx = price_context(loaded.frame, table, settings.horizon)
            past = ctx.get_column("past_return").to_numpy().astype(float)
            yesterday = np.where(np.isnan(past), 1, past > 0).astype(int)
            scored = _policies(fits, replayed, period, yesterday, positions)
            tickers = table.get_column("ticker").to_numpy()
            dates = table.get_column("date").to_numpy()
            next_return = ctx.get_column("next_return").fill_null(0.0).to_numpy()
            summary, curves = _summary_of(scored, y, tickers, dates, next_return, settings=settings)
            step_rows = _step_rows(fits, replayed, scored, y, period, dates, curves, cached)
        promotions = sum(1 for d in replayed.decisions if d.promote)
        summary = {"steps": len(fits), "promotions": promotions, **summary}
        warnings = list(dict.fromkeys(w for fit in fits for w in fit.warnings))
        notes = [NO_MODEL_NOTE] if None in replayed.champions else []
        window = {
            "source": loaded.source,
            "tickers": list(loaded.tickers),
            "start": str(steps[0]),
            "end": str(table.get_column("date").max()),
            "every": str(interval),
            "data_start": str(loaded.start),
            "data_end": str(loaded.end),
        }
        report_dir, report_files, report_warning = _write_report(
            settings, run.run_id, step_rows, summary, curves, window, notes
        )
        if report_warning:
            warnings.append(report_warning)
        log.info(
            "Backtest complete",
            steps=len(fits),
            promotions=promotions,
            gated_accuracy=round(summary["policies"]["gated"]["accuracy"], 4),
            always_up_accuracy=round(summary["policies"]["always_up"]["accuracy"], 4),
        )
        return BacktestResult(
            status="completed",
            exit_code=EXIT_SUCCESS,
            warnings=tuple(warnings),
            model_type=model_cls.name,
            every=str(interval),
            workers=n_workers,
            data_window=window,
            steps=step_rows,
            summary=summary,
            notes=tuple(notes),
            cache_dir=str(cache.folder),
            cached_steps=len(cached),
            computed_steps=computed,
            report_dir=None if report_dir is None else str(report_dir),
            report_files=tuple(str(p) for p in report_files),
            timings=timer.timings,
            duration_s=run.elapsed(),
            run_id=run.run_id,
        )


# What the replay and its report import after the fits (seconds of imports, done while
# this process only waits for the workers).
_REPLAY_MODULES = (*EVALUATION_MODULES, *REPORT_MODULES)


def spec_columns(spec: FeatureSpec) -> list[str]:
    from marketpredictor_train.features import model_feature_names

    return model_feature_names(spec)


def _start_date(start: date | str | None, loaded: LoadedData, last: date | None) -> date:
    from marketpredictor_train.data.sources import years_before

    if start is None:
        return years_before(loaded.end, DEFAULT_YEARS)
    try:
        day = start if isinstance(start, date) else date.fromisoformat(str(start))
    except ValueError:
        raise ConfigError(
            f"--start {start!r} is not a date", hint="Give it as YYYY-MM-DD."
        ) from None
    if last is None or day > last:
        raise ConfigError(
            f"--start {day} is after the last date with a label in the data ({last or loaded.end})",
            hint=f"The data runs from {loaded.start} to {loaded.end}; start earlier.",
        )
    return day


def _steps_with_rows(steps: list[date], table: pl.DataFrame) -> list[date]:
    """Steps whose period has at least one scoring row (a membership can empty one)."""
    import numpy as np

    days = np.unique(table.get_column("date").to_numpy().astype("datetime64[D]"))
    bounds = np.asarray([*steps, date.max], dtype="datetime64[D]")
    kept = [s for i, s in enumerate(steps) if np.any((days >= bounds[i]) & (days < bounds[i + 1]))]
    if not kept:
        raise ConfigError("No row to score from --start on", hint="Start earlier.")
    return kept


def _check_first_step(context: _StepContext, day: date) -> None:
    """The first step's data is the least of all: build its table here so too little data
    fails at once, with train's own message, before any process starts."""
    from marketpredictor_train.data.loader import loaded_before

    settings = context.settings
    try:
        loaded = loaded_before(
            context.loaded, day, settings, min_history=min_history(settings, context.spec)
        )
        build_run_dataset(settings, loaded, context.spec, StepTimer(), None)
    except MptrainError as exc:
        exc.message = f"{exc.message} (backtest step {day}: data before that date)"
        raise


def _write_report(  # noqa: PLR0913 - the run, its numbers and where they go
    settings: Settings,
    run_id: str,
    steps: list[dict[str, Any]],
    summary: dict[str, Any],
    curves: dict[str, Any],
    window: dict[str, Any],
    notes: list[str],
) -> tuple[Path | None, list[Path], str | None]:
    from marketpredictor_train.validation.replay_report import write_backtest_report

    if settings.report_dir is not None:
        folder = Path(settings.report_dir)
    else:
        folder = run_report_folder(logs_reports_dir(settings), "backtest", run_id)
    try:
        files = write_backtest_report(
            folder, steps=steps, summary=summary, curves=curves, window=window, notes=notes
        )
    except OSError as exc:
        warning = f"The backtest report could not be written to {folder}: {exc}"
        log.warning(warning)
        return None, [], warning
    log.info("Backtest report written", path=str(folder / "report.html"))
    return folder, files, None
