"""The backtest of one model on rows it never trained on: every metric with its sample
size, a confidence interval, naive baselines and a trading view on the same rows, a
per-ticker breakdown, and the champion (production) vs challenger comparison.

:func:`evaluate` scores one model's probabilities; :func:`compare_with_production` scores
the champion on the challenger's rows. Both `train` and `mptrain validate` call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    # the whole interval behind primary_difference_ci: its level, days, effective n
    primary_difference_interval: Interval | None = None

    @property
    def primary_difference_level(self) -> float:
        interval = self.primary_difference_interval
        return 0.95 if interval is None else interval.level

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
                "level": self.primary_difference_level,
            },
            "primary_difference_method": self.primary_difference_method,
            "verdict": self.verdict,
            "mcnemar": dict(self.mcnemar),
            "trading": dict(self.trading),
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
            "production_version": self.production_version,
            "feature_importance": self.feature_importance,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def price_context(ohlcv: pl.DataFrame, rows: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """For each row (ticker, date), in the rows' order: the ticker's close-to-next-close
    return (what a position held that day earns) and its return over the previous
    ``horizon`` rows (known at the close of the row's date)."""
    import polars as pl

    close = pl.col("close")
    ctx = (
        ohlcv.select("ticker", "date", "close")
        .sort("ticker", "date")
        .with_columns(
            (close.shift(-1).over("ticker") / close - 1.0).alias("next_return"),
            (close / close.shift(horizon).over("ticker") - 1.0).alias("past_return"),
        )
        .drop("close")
    )
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
    level: float = 0.95,
) -> ValidationReport:
    """Score P(up) ``proba`` of ``rows`` (ticker, date, label; sorted by ticker, date).
    Intervals (accuracy, the trading view's Sharpe ratios) are at ``level``."""
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

    trading = trading_view(
        tickers,
        dates,
        pred,
        next_return,
        horizon=horizon,
        cost_per_trade=cost_per_trade,
        level=level,
        seed=seed,
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
            f"With a dead band of {dead_band:g}, days whose move was inside the band have no "
            "label and are not backtest rows; the trading view earns nothing on them (as if "
            "flat, without the costs of leaving and re-entering)."
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
        feature_importance=dict(feature_importance) if feature_importance else None,
        warnings=tuple(warnings),
        notes=tuple(notes),
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

    out = []
    for ticker in np.unique(tickers):
        mask = tickers == ticker
        yt, pt = y[mask], pred[mask]
        tp, fp, fn, _ = confusion_counts(yt, pt)
        out.append(
            {
                "ticker": str(ticker),
                "n_samples": int(mask.sum()),
                "accuracy": float(np.mean(pt == yt)),
                "precision": tp / (tp + fp) if tp + fp else 0.0,
                "recall": tp / (tp + fn) if tp + fn else 0.0,
                "roc_auc": roc_auc(yt, proba[mask]),
                "always_up_accuracy": float(np.mean(yt == 1)),
                "yesterday_direction_accuracy": float(np.mean(yesterday[mask] == yt)),
                **trading.per_ticker.get(str(ticker), {}),
            }
        )
    return out


def score_model_file(
    model_file: ModelFile, ohlcv: pl.DataFrame, rows: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """P(up) of a stored model on those of ``rows`` (ticker, date, ...) it can score,
    with features rebuilt from ``ohlcv`` using the model's own spec. Returns the row
    positions scored and the probabilities; rows inside the model's warm-up are left out."""
    from marketpredictor_train.features import build_features
    from marketpredictor_train.models.trained import TrainedModel

    model = TrainedModel.from_model_file(model_file)
    spec = model.spec
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


def compare_with_production(  # noqa: PLR0913 - both models, their rows, and how to score them
    production_file: ModelFile,
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
    mid-p test on accuracy.

    Raises MptrainError when the production model cannot be scored."""
    import numpy as np

    from marketpredictor_train.validation.metrics import mcnemar_midp, scored_metrics
    from marketpredictor_train.validation.trading import trading_view

    positions, champion_proba = score_model_file(production_file, ohlcv, rows)
    manifest = production_file.manifest
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
