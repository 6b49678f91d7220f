"""The backtest of one model on rows it never trained on: every metric with its sample
size, a confidence interval, naive baselines and a trading view on the same rows, a
per-ticker breakdown, and the champion (production) vs challenger comparison.

:func:`evaluate` scores one model's probabilities; :func:`score_model_file` scores a
stored model on the challenger's rows and :func:`compare_scored` compares the two (the
pipelines' champion scoring, ``pipelines.common.score_champion``, calls them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from marketpredictor_train.errors import MptrainError
from marketpredictor_train.validation.gate import ThresholdCheck, check_thresholds
from marketpredictor_train.validation.metrics import (
    DECISION_THRESHOLD,
    PROBABILITY_METRICS,
    SEED_METRICS,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.store import ModelFile
    from marketpredictor_train.validation.intervals import Interval
    from marketpredictor_train.validation.trading import TradingView

# Daily direction models that honestly score this much are rare enough that such a result
# deserves a look for leaked future data before anyone trades on it.
IMPLAUSIBLE_ACCURACY = 0.65
COMPARED_METRICS = (*SEED_METRICS, *PROBABILITY_METRICS)


@dataclass(frozen=True)
class SkillEvidence:
    """The model against the better naive baseline on the same rows (a paired interval of
    model minus baseline), and its probabilities against a constant forecast of the
    training base rate. What the skill gate reads."""

    metric: str
    baseline: str  # the better of "always_up" and "yesterday_direction" on these rows
    model_value: float
    baseline_value: float
    difference_ci: tuple[float, float]  # model minus baseline, paired day-level interval
    level: float
    n_rows: int
    base_rate: float  # share of training rows that went up
    log_loss: float
    base_rate_log_loss: float
    brier: float
    base_rate_brier: float

    @property
    def difference(self) -> float:
        return self.model_value - self.baseline_value

    @property
    def beats_baseline(self) -> bool:
        return self.difference_ci[0] > 0

    @property
    def probabilities_have_skill(self) -> bool:
        return self.log_loss < self.base_rate_log_loss and self.brier < self.base_rate_brier

    def to_dict(self) -> dict[str, Any]:
        low, high = self.difference_ci
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "model": self.model_value,
            "baseline_value": self.baseline_value,
            "difference": self.difference,
            "difference_ci": {"low": low, "high": high, "level": self.level},
            "beats_baseline": self.beats_baseline,
            "n_rows": self.n_rows,
            "base_rate": self.base_rate,
            "log_loss": self.log_loss,
            "base_rate_log_loss": self.base_rate_log_loss,
            "log_loss_skill": skill_score(self.log_loss, self.base_rate_log_loss),
            "brier": self.brier,
            "base_rate_brier": self.base_rate_brier,
            "brier_skill": skill_score(self.brier, self.base_rate_brier),
            "probabilities_have_skill": self.probabilities_have_skill,
        }


def skill_score(value: float, reference: float) -> float | None:
    """1 - value / reference: above 0 when better than the reference forecast."""
    return None if reference <= 0 else 1.0 - value / reference


@dataclass(frozen=True)
class Comparison:
    """Champion (production) vs challenger on exactly the same rows. Differences are
    challenger minus champion; ``to_dict`` is its JSON form (``validation.comparison``)."""

    production_version: str | None
    production_model_type: str | None
    n_common: int
    primary_metric: str
    new: dict[str, Any]  # the challenger's metrics on the common rows
    production: dict[str, Any]  # the champion's metrics on the common rows
    difference: dict[str, float | None]
    primary_difference_ci: tuple[float, float]
    primary_difference_method: str
    mcnemar: dict[str, Any]
    trading: dict[str, Any]
    warnings: tuple[str, ...] = ()
    level: float = 0.95
    # False when too few rows come after the champion's own training data for its figures
    # to mean anything; the gate then leaves the champion out of the decision.
    comparable: bool = True
    note: str | None = None
    # the whole interval behind primary_difference_ci: its level, days, effective n
    primary_difference_interval: Interval | None = None

    @property
    def primary_difference_level(self) -> float:
        return self.level

    @property
    def primary_difference(self) -> float | None:
        return self.difference.get(self.primary_metric)

    @property
    def verdict(self) -> str:
        low, high = self.primary_difference_ci
        if low <= 0 <= high:
            return "within noise"
        return "significantly better" if low > 0 else "significantly worse"

    def to_dict(self) -> dict[str, Any]:
        low, high = self.primary_difference_ci
        return {
            "production_version": self.production_version,
            "production_model_type": self.production_model_type,
            "n_common": self.n_common,
            "primary_metric": self.primary_metric,
            "new": dict(self.new),
            "production": dict(self.production),
            "difference": dict(self.difference),
            "primary_difference": self.primary_difference,
            "primary_difference_ci": {
                **(
                    self.primary_difference_interval.to_dict()
                    if self.primary_difference_interval
                    else {}
                ),
                "low": low,
                "high": high,
                "level": self.level,
            },
            "primary_difference_method": self.primary_difference_method,
            "verdict": self.verdict,
            "mcnemar": dict(self.mcnemar),
            "trading": dict(self.trading),
            "comparable": self.comparable,
            "note": self.note,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Everything one backtest measured; ``to_dict`` is its JSON form (in --output-json
    under ``validation`` and in the report folder as report.json)."""

    subject: str
    version: str | None
    model_type: str | None
    horizon: int
    dead_band: float
    window: dict[str, Any]
    metrics: dict[str, Any]
    accuracy_ci: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    per_ticker: list[dict[str, Any]]
    trading: TradingView
    calibration: list[dict[str, Any]]
    thresholds: dict[str, ThresholdCheck]
    comparison: Comparison | None = None
    skill: SkillEvidence | None = None
    # log loss, Brier and calibration bins of the probabilities before calibration
    uncalibrated: dict[str, Any] | None = None
    production_version: str | None = None
    feature_importance: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def independent_outcomes(self) -> str:
        """'about 5.3 independent outcomes (106 trading days / horizon 20)'."""
        from marketpredictor_train.validation.intervals import effective_sample_sentence

        return effective_sample_sentence(int(self.accuracy_ci["n_days"]), self.horizon)

    @property
    def passed_thresholds(self) -> bool:
        return all(check.passed for check in self.thresholds.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "model_type": self.model_type,
            "horizon": self.horizon,
            "dead_band": self.dead_band,
            "decision_threshold": DECISION_THRESHOLD,
            "window": dict(self.window),
            "metrics": dict(self.metrics),
            "accuracy_ci": dict(self.accuracy_ci),
            "baselines": {k: dict(v) for k, v in self.baselines.items()},
            "thresholds": {k: v.to_dict() for k, v in self.thresholds.items()},
            "passed_thresholds": self.passed_thresholds,
            "trading": self.trading.to_dict(),
            "per_ticker": [dict(row) for row in self.per_ticker],
            "calibration": [dict(row) for row in self.calibration],
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "skill": None if self.skill is None else self.skill.to_dict(),
            "uncalibrated": self.uncalibrated,
            "production_version": self.production_version,
            "feature_importance": self.feature_importance,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def rows_from(prices: pl.DataFrame, first: date, horizon: int) -> pl.DataFrame:
    """The rows of ``prices`` (sorted by ticker, date) that returns over ``horizon`` rows
    from ``first`` on read: every row dated ``first`` or later, and the ``horizon`` rows
    of its ticker before. A few rows of the ticker before are kept too at a ticker's
    start; a shift that checks the ticker ignores them."""
    import polars as pl

    recent = pl.col("date") >= first
    return prices.filter(
        pl.any_horizontal([recent.shift(-k, fill_value=False) for k in range(horizon + 1)])
    )


def price_context(ohlcv: pl.DataFrame, rows: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """For each row (ticker, date), in the rows' order: the ticker's close-to-next-close
    return (what a position held that day earns) and its return over the previous
    ``horizon`` rows (known at the close of the row's date)."""
    import polars as pl

    from marketpredictor_train.features import ordered_by_ticker_date

    prices = ohlcv.select("ticker", "date", "close")
    if not ordered_by_ticker_date(prices):
        prices = prices.sort("ticker", "date")
    if rows.height:
        # The whole price history of a universe is 1.26M rows; the backtest's, 70k.
        prices = rows_from(prices, cast(date, rows.get_column("date").min()), horizon)
    # On rows sorted by (ticker, date), a shift stays inside the ticker where the shifted
    # ticker is the same: row-wise, without partitioning every price row by ticker.
    ticker, close = pl.col("ticker"), pl.col("close")
    ctx = prices.select(
        "ticker",
        "date",
        pl.when(ticker.shift(-1) == ticker)
        .then(close.shift(-1) / close - 1.0)
        .alias("next_return"),
        pl.when(ticker.shift(horizon) == ticker)
        .then(close / close.shift(horizon) - 1.0)
        .alias("past_return"),
    )
    if rows.height:  # the dates the rows need
        ctx = ctx.filter(pl.col("date") >= rows.get_column("date").min())
    return (
        rows.select("ticker", "date")
        .with_row_index("_row")
        .join(ctx, on=["ticker", "date"], how="left")
        .sort("_row")
        .drop("_row")
    )


def evaluate(  # noqa: PLR0913 - the rows, their probabilities and what the report says of them
    rows: pl.DataFrame,
    proba: np.ndarray,
    ohlcv: pl.DataFrame,
    *,
    horizon: int,
    dead_band: float,
    cost_per_trade: float,
    thresholds: Mapping[str, float],
    seed: int,
    subject: str,
    window: Mapping[str, Any],
    version: str | None = None,
    model_type: str | None = None,
    feature_importance: Mapping[str, float] | None = None,
    base_rate: float | None = None,
    gate_level: float = 0.90,
    skill_metric: str = "accuracy",
    uncalibrated: np.ndarray | None = None,
    calibration_method: str | None = None,
    level: float = 0.95,
    trading_intervals: bool = True,
) -> ValidationReport:
    """Score P(up) ``proba`` of ``rows`` (ticker, date, label; sorted by ticker, date).

    Intervals shown in the report (accuracy, the trading view's Sharpe ratios) are at
    ``level``. ``base_rate`` is the share of training rows that went up (the constant
    forecast the probabilities must beat; None: 0.5); the skill evidence compares
    ``skill_metric`` with the better naive baseline in a paired interval at
    ``gate_level``. ``uncalibrated`` are the model's probabilities before
    ``calibration_method`` mapped them to ``proba``. Without ``trading_intervals`` the
    trading view has no Sharpe intervals (their bootstrap is most of its cost), for a
    caller that reads only the metrics and the skill evidence."""
    import numpy as np

    from marketpredictor_train.validation.intervals import (
        confusion_indicators,
        effective_sample_sentence,
        metric_interval,
    )
    from marketpredictor_train.validation.metrics import (
        calibration_bins,
        prediction_metrics,
        scored_metrics,
        wilson_interval,
    )
    from marketpredictor_train.validation.trading import trading_view

    y = rows.get_column("label").to_numpy().astype(int)
    proba = np.asarray(proba, dtype=float)
    pred = (proba >= DECISION_THRESHOLD).astype(int)
    tickers = rows.get_column("ticker").to_numpy()
    dates = rows.get_column("date").to_numpy()
    ctx = price_context(ohlcv, rows, horizon)
    next_return = ctx.get_column("next_return").fill_null(0.0).to_numpy()
    past_return = ctx.get_column("past_return").to_numpy()

    metrics = scored_metrics(y, proba)
    interval = metric_interval(
        "accuracy", confusion_indicators(y, pred), dates, horizon=horizon, level=level
    )
    low, high = interval.bounds
    w_low, w_high = wilson_interval(int(np.sum(pred == y)), int(y.size), level)
    accuracy_ci = {
        **interval.to_dict(),
        "horizon": horizon,
        "wilson_low": w_low,
        "wilson_high": w_high,
    }
    outcomes = effective_sample_sentence(interval.n_days, horizon)

    always_up = np.ones_like(y)
    # The direction of the last completed move (one day for horizon 1, else the last
    # `horizon` days), which a trader knows at the close.
    yesterday = np.where(np.isnan(past_return.astype(float)), 1, past_return > 0).astype(int)
    baselines = {
        "always_up": prediction_metrics(y, always_up),
        "yesterday_direction": prediction_metrics(y, yesterday),
    }
    skill = skill_evidence(
        y,
        proba,
        {"always_up": always_up, "yesterday_direction": yesterday},
        dates,
        horizon=horizon,
        metric=skill_metric,
        level=gate_level,
        base_rate=0.5 if base_rate is None else base_rate,
    )

    trading = trading_view(
        tickers,
        dates,
        pred,
        next_return,
        horizon=horizon,
        cost_per_trade=cost_per_trade,
        level=level,
        seed=seed,
        intervals=trading_intervals,
    )
    per_ticker = _per_ticker(tickers, y, proba, pred, yesterday, trading)

    warnings: list[str] = []
    if low > IMPLAUSIBLE_ACCURACY:
        warnings.append(
            f"Backtest accuracy {metrics['accuracy']:.2%} ({level * 100:g}% CI from {low:.2%}) "
            "is far above what honest daily direction models reach; check custom features "
            "and data for look-ahead before trusting it"
        )
    notes = [
        f"Predictions are 'up' when P(up) >= {DECISION_THRESHOLD} (fixed, not tuned).",
        f"Accuracy CI: {interval.method}. Rows of one day are correlated across tickers "
        f"and labels {horizon} day(s) ahead overlap, so the backtest holds {outcomes}; "
        "the interval is as wide as that requires. The Wilson interval assumes independent "
        "rows and is shown for reference only.",
        "Baselines on the same rows: always-up predicts 'up' everywhere; "
        "yesterday_direction repeats the direction of the previous "
        f"{horizon} trading day(s).",
    ]
    if dead_band > 0:
        notes.append(
            f"The dead band ({dead_band:g}) applies to training labels only: the model did "
            "not learn from days whose move was inside it, but the backtest and the trading "
            "view score every day, since which days turn out small is not known in advance."
        )
    scored = {
        "n_days": interval.n_days,
        "first_scored_date": str(dates.min()) if dates.size else None,
        "last_scored_date": str(dates.max()) if dates.size else None,
    }
    return ValidationReport(
        subject=subject,
        version=version,
        model_type=model_type,
        horizon=horizon,
        dead_band=dead_band,
        window={**window, **scored},
        metrics=metrics,
        accuracy_ci=accuracy_ci,
        baselines=baselines,
        per_ticker=per_ticker,
        trading=trading,
        calibration=calibration_bins(y, proba),
        thresholds=check_thresholds(metrics, thresholds),
        skill=skill,
        uncalibrated=None
        if uncalibrated is None
        else _before_calibration(y, np.asarray(uncalibrated, dtype=float), calibration_method),
        feature_importance=dict(feature_importance) if feature_importance else None,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


def _before_calibration(y: np.ndarray, raw: np.ndarray, method: str | None) -> dict[str, Any]:
    """The backtest's probability scores before calibration, to show what it changed."""
    from marketpredictor_train.validation.metrics import brier, calibration_bins, log_loss

    return {
        "method": method,
        "log_loss": log_loss(y, raw),
        "brier": brier(y, raw),
        "calibration": calibration_bins(y, raw),
    }


def skill_evidence(
    y: np.ndarray,
    proba: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    dates: np.ndarray,
    *,
    horizon: int,
    metric: str,
    level: float,
    base_rate: float,
) -> SkillEvidence | None:
    """The model against the better of the naive ``baselines`` (0/1 calls) on ``metric``,
    with the paired day-level interval of the difference, and its log loss and Brier
    score against a constant forecast of ``base_rate``. None without rows."""
    import numpy as np

    from marketpredictor_train.validation.metrics import brier, log_loss, scored_metrics

    if y.size == 0:
        return None
    calls = {name: np.asarray(pred, dtype=float) for name, pred in baselines.items()}
    values = {name: scored_metrics(y, pred)[metric] for name, pred in calls.items()}
    best = max(values, key=lambda name: -np.inf if values[name] is None else values[name])
    model_value = scored_metrics(y, proba)[metric]
    ci = _paired_interval(metric, dates, y, proba, calls[best], horizon=horizon, level=level).bounds
    constant = np.full(y.shape, min(max(base_rate, 1e-6), 1 - 1e-6))
    return SkillEvidence(
        metric=metric,
        baseline=best,
        model_value=0.0 if model_value is None else float(model_value),
        baseline_value=0.0 if values[best] is None else float(values[best]),
        difference_ci=ci,
        level=level,
        n_rows=int(y.size),
        base_rate=float(base_rate),
        log_loss=log_loss(y, proba),
        base_rate_log_loss=log_loss(y, constant),
        brier=brier(y, proba),
        base_rate_brier=brier(y, constant),
    )


def _per_ticker(
    tickers: np.ndarray,
    y: np.ndarray,
    proba: np.ndarray,
    pred: np.ndarray,
    yesterday: np.ndarray,
    trading: TradingView,
) -> list[dict[str, Any]]:
    import numpy as np

    from marketpredictor_train.validation.metrics import confusion_counts, roc_auc

    # each ticker's rows, in their order, as one slice of a stable sort by ticker
    order = np.argsort(tickers, kind="stable")
    names, starts, counts = np.unique(tickers[order], return_index=True, return_counts=True)
    out = []
    for ticker, first, n in zip(names, starts, counts, strict=True):
        rows = order[first : first + n]
        yt, pt = y[rows], pred[rows]
        tp, fp, fn, _ = confusion_counts(yt, pt)
        out.append(
            {
                "ticker": str(ticker),
                "n_samples": int(n),
                "accuracy": float(np.mean(pt == yt)),
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "roc_auc": roc_auc(yt, proba[rows]),
                "always_up_accuracy": float(np.mean(yt == 1)),
                "yesterday_direction_accuracy": float(np.mean(yesterday[rows] == yt)),
                **trading.per_ticker.get(str(ticker), {}),
            }
        )
    return out


def score_model_file(
    model_file: ModelFile,
    ohlcv: pl.DataFrame,
    rows: pl.DataFrame,
    *,
    rows_spec_hash: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """P(up) of a stored model on those of ``rows`` (ticker, date, ...) it can score,
    with features rebuilt from ``ohlcv`` using the model's own spec, or taken from
    ``rows`` when they were built from the same ``ohlcv`` with that very spec
    (``rows_spec_hash``). Returns the row positions scored and the probabilities; rows
    inside the model's warm-up are left out."""
    from marketpredictor_train.features import PRICE_COLUMNS, build_features
    from marketpredictor_train.models.trained import TrainedModel

    model = TrainedModel.from_model_file(model_file)
    spec = model.spec
    if rows_spec_hash == spec.hash and set(model.feature_columns) <= set(rows.columns):
        feats = rows  # the same features: no second build of every ticker's history
    else:
        missing = set(PRICE_COLUMNS) - set(ohlcv.columns)
        if missing:
            # A train keeps only the closes while it fits when production shares its
            # features (pipelines.common.prices_for_validation); another run promoted a
            # model of other features meanwhile.
            raise MptrainError(
                "it has other features than this run, and only the close prices were kept "
                f"while the model fitted (no {', '.join(sorted(missing))}): it was promoted "
                "by another run meanwhile; the next train compares it"
            )
        feats = build_features(ohlcv, spec)
    joined = (
        rows.select("ticker", "date")
        .with_row_index("_row")
        .join(
            feats.select(["ticker", "date", *model.feature_columns]),
            on=["ticker", "date"],
            how="inner",
        )
        .drop_nulls(model.feature_columns)
        .sort("_row")
    )
    positions = joined.get_column("_row").to_numpy()
    return positions, model.predict_proba(joined, spec)


def compare_scored(  # noqa: PLR0913 - both models, their rows, and how to score them
    manifest: Mapping[str, Any],
    champion_scores: tuple[np.ndarray, np.ndarray],
    ohlcv: pl.DataFrame,
    rows: pl.DataFrame,
    new_proba: np.ndarray,
    *,
    primary_metric: str,
    horizon: int,
    cost_per_trade: float,
    seed: int,
    level: float = 0.95,
) -> Comparison:
    """Champion (production) vs challenger on exactly the same rows: both models' metrics
    there, their differences (challenger minus champion), a paired day-level interval of
    the primary metric's difference at ``level`` (``validation.intervals``), and McNemar's
    mid-p test on accuracy. ``manifest`` describes the champion (version, model type,
    label); ``champion_scores`` are the positions in ``rows`` it could score and its P(up)
    there (:func:`score_model_file` for a stored model).

    Raises MptrainError when the champion scored no row."""
    import numpy as np

    from marketpredictor_train.validation.metrics import mcnemar_midp, scored_metrics
    from marketpredictor_train.validation.trading import trading_view

    positions, champion_proba = champion_scores
    common = rows[positions]
    y = common.get_column("label").to_numpy().astype(int)
    challenger_proba = np.asarray(new_proba, dtype=float)[positions]
    warnings: list[str] = []
    if len(positions) == 0:
        raise MptrainError(
            "no backtest row has complete features for the production model's feature spec"
        )
    if len(positions) < rows.height:
        warnings.append(
            f"The production model could score {len(positions)} of {rows.height} backtest "
            "rows (its features need a longer warm-up); both models are compared on those"
        )
    champion_horizon = int((manifest.get("label") or {}).get("horizon", horizon))
    if champion_horizon != horizon:
        warnings.append(
            f"The production model was trained for a {champion_horizon}-day horizon and is "
            f"scored here on {horizon}-day labels"
        )
    new = scored_metrics(y, challenger_proba)
    prod = scored_metrics(y, champion_proba)
    difference = {
        m: (None if new[m] is None or prod[m] is None else float(new[m]) - float(prod[m]))
        for m in COMPARED_METRICS
    }
    new_right = (challenger_proba >= DECISION_THRESHOLD).astype(int) == y
    prod_right = (champion_proba >= DECISION_THRESHOLD).astype(int) == y
    b = int(np.sum(new_right & ~prod_right))
    c = int(np.sum(~new_right & prod_right))

    dates = common.get_column("date").to_numpy()
    interval = _paired_interval(
        primary_metric, dates, y, challenger_proba, champion_proba, horizon=horizon, level=level
    )

    tickers = common.get_column("ticker").to_numpy()
    next_return = (
        price_context(ohlcv, common, horizon).get_column("next_return").fill_null(0.0).to_numpy()
    )
    trade_new = trading_view(
        tickers,
        dates,
        (challenger_proba >= DECISION_THRESHOLD).astype(int),
        next_return,
        horizon=horizon,
        cost_per_trade=cost_per_trade,
        level=level,
        seed=seed,
        intervals=False,  # the comparison reads returns and Sharpe ratios only
    )
    trade_prod = trading_view(
        tickers,
        dates,
        (champion_proba >= DECISION_THRESHOLD).astype(int),
        next_return,
        horizon=horizon,
        cost_per_trade=cost_per_trade,
        level=level,
        seed=seed,
        intervals=False,
    )
    return Comparison(
        production_version=manifest.get("version"),
        production_model_type=manifest.get("model_type"),
        n_common=int(len(positions)),
        primary_metric=primary_metric,
        new=new,
        production=prod,
        difference=difference,
        primary_difference_ci=interval.bounds,
        primary_difference_method=f"paired {interval.method}",
        mcnemar={
            "new_only_correct": b,
            "production_only_correct": c,
            "p_value": mcnemar_midp(b, c),
            "method": "McNemar mid-p (two-sided), accuracy; assumes independent rows",
        },
        trading={
            "new_cumulative_return": trade_new.strategy["cumulative_return"],
            "production_cumulative_return": trade_prod.strategy["cumulative_return"],
            "new_sharpe": trade_new.strategy["sharpe"],
            "production_sharpe": trade_prod.strategy["sharpe"],
        },
        warnings=tuple(warnings),
        level=level,
        primary_difference_interval=interval,
    )


def _paired_interval(
    metric: str,
    dates: np.ndarray,
    y: np.ndarray,
    new_proba: np.ndarray,
    prod_proba: np.ndarray,
    *,
    horizon: int,
    level: float,
) -> Interval:
    """Interval of (challenger - champion) on ``metric``, paired on the same rows and days."""
    from marketpredictor_train.validation.intervals import (
        auc_difference_interval,
        confusion_indicators,
        paired_difference_interval,
    )

    if metric in SEED_METRICS:
        return paired_difference_interval(
            metric,
            confusion_indicators(y, new_proba >= DECISION_THRESHOLD),
            confusion_indicators(y, prod_proba >= DECISION_THRESHOLD),
            dates,
            horizon=horizon,
            level=level,
        )
    if metric != "roc_auc":
        raise ValueError(f"no paired interval for {metric}")
    return auc_difference_interval(y, new_proba, prod_proba, dates, horizon=horizon, level=level)
