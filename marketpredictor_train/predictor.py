"""The model in use: :func:`load_model` reads a verified model file (a ``.bin``, or the
store's production model or one of its versions) and :meth:`LoadedModel.predict` turns
daily OHLCV bars into P(up) per ticker and date, with the model's own feature spec.

Importing this module is cheap; loading a model imports Polars and the model's library,
and nothing else a prediction does not need (no MLflow, Optuna or Typer). It logs
nothing, so a program that has not configured logging sees no stray lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from marketpredictor_train.errors import ConfigError, DataError, StoreError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from marketpredictor_train.features import FeatureSpec
    from marketpredictor_train.models.trained import TrainedModel
    from marketpredictor_train.store import ModelFile

__all__ = ["DECISION_THRESHOLD", "PREDICTION_COLUMNS", "LoadedModel", "load_model"]

# P(up) at or above which the model says "up": the threshold its backtest was scored at
# (validation.metrics.DECISION_THRESHOLD; a test keeps the two equal).
DECISION_THRESHOLD = 0.5
PREDICTION_COLUMNS = ("ticker", "date", "probability_up", "prediction")
DEFAULT_MODELS_DIR = Path("models")

Target = Literal["production", "version", "model_file"]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A verified model file ready to predict: its manifest and the fitted model.

    Get one with :func:`load_model`. The manifest's main entries are attributes:
    ``version``, ``model_type``, ``horizon``, ``feature_spec``, ``data_window``,
    ``metrics``; ``manifest`` holds all of it.
    """

    path: Path
    target: Target
    manifest: Mapping[str, Any] = field(repr=False)
    _trained: TrainedModel = field(repr=False)

    @property
    def version(self) -> str | None:
        """The store version (``YYYYMMDD_HHMMSS``) the model was saved as."""
        value = self.manifest.get("version")
        return str(value) if value is not None else None

    @property
    def model_type(self) -> str:
        return str(self.manifest.get("model_type"))

    @property
    def horizon(self) -> int:
        """Trading days ahead the model predicts: P(close[t + horizon] > close[t])."""
        return self._trained.horizon

    @property
    def dead_band(self) -> float:
        return float((self.manifest.get("label") or {}).get("dead_band", 0.0))

    @property
    def feature_spec(self) -> FeatureSpec:
        """The indicators the model was trained on; predict builds exactly these."""
        return self._trained.spec

    @property
    def feature_spec_hash(self) -> str:
        return str(self.manifest.get("feature_spec_hash"))

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return tuple(self._trained.feature_columns)

    @property
    def data_window(self) -> dict[str, Any]:
        """The data the model was trained and backtested on (source, tickers, dates)."""
        return dict(self.manifest.get("data_window") or {})

    @property
    def metrics(self) -> dict[str, Any]:
        """The backtest metrics of the model (empty when validation was skipped or the
        model was refit on every row)."""
        return dict(self.manifest.get("metrics") or {})

    @property
    def decision_threshold(self) -> float:
        return DECISION_THRESHOLD

    @property
    def warmup_rows(self) -> int:
        """Rows a ticker needs before its first prediction (the indicators' warm-up)."""
        from marketpredictor_train.features import warmup_rows

        return warmup_rows(self.feature_spec)

    def predict(self, ohlcv: pl.DataFrame | pl.LazyFrame | pd.DataFrame) -> pl.DataFrame:
        """P(up) for every (ticker, date) of ``ohlcv`` that has complete features.

        ``ohlcv``: daily bars, one row per (ticker, date), columns ``date, ticker, open,
        high, low, close, volume`` in any letter case (``adj_close`` optional; dates as
        dates, timestamps or ISO text), as a Polars or pandas frame (a pandas date index
        is used as the ``date`` column). The model's own feature spec is built from it;
        the first :attr:`warmup_rows` rows of each ticker have no prediction.

        Returns a Polars frame sorted by (ticker, date) with ``ticker``, ``date``
        (Date), ``probability_up`` (Float64) and ``prediction`` (``"up"`` when
        probability_up >= :attr:`decision_threshold`, else ``"down"``).

        Raises :class:`DataError` for bad OHLCV data (naming the rows at fault) and when
        no ticker has enough rows for the warm-up.
        """
        import polars as pl

        from marketpredictor_train.data.schema import validate_ohlcv
        from marketpredictor_train.features import build_features

        frame = validate_ohlcv(_as_polars(ohlcv), origin="the data given to predict")
        columns = list(self.feature_columns)
        spec = self.feature_spec
        complete = (
            build_features(frame, spec)
            .select("ticker", "date", *columns)
            .drop_nulls(columns)
            .filter(pl.all_horizontal([pl.col(c).is_finite() for c in columns]))
        )
        if complete.height == 0:
            raise _too_short(frame, self.warmup_rows, self.version)
        proba = self._trained.predict_proba(complete, spec)
        return complete.select("ticker", "date").with_columns(
            pl.Series("probability_up", proba, dtype=pl.Float64),
            pl.when(pl.Series(proba) >= DECISION_THRESHOLD)
            .then(pl.lit("up"))
            .otherwise(pl.lit("down"))
            .alias("prediction"),
        )


def load_model(
    path: str | Path | None = None,
    *,
    models_dir: str | Path | None = None,
    version: str | None = None,
) -> LoadedModel:
    """Load a model for prediction, verified as every mptrain command verifies it (its
    SHA-256 seal, its format, and for a store model the version named inside it).

    - ``load_model("models/model_20250120_020015.bin")``: that file.
    - ``load_model(models_dir="models")``: the store's production model.
    - ``load_model(models_dir="models", version="20250120_020015")``: that version.

    With neither ``path`` nor ``models_dir``, the store is ``./models``.

    Raises :class:`~marketpredictor_train.errors.StoreError` when there is no production
    model, :class:`~marketpredictor_train.errors.ModelFileError` for a missing, damaged or
    foreign file, :class:`~marketpredictor_train.errors.ConfigError` for an unknown or
    malformed version or a path given together with a store.
    """
    model_file, where, target = read_target(path, models_dir=models_dir, version=version)
    return from_model_file(model_file, where, target)


def read_target(
    path: str | Path | None, *, models_dir: str | Path | None, version: str | None
) -> tuple[ModelFile, Path, Target]:
    """The verified model file named by a path, a store version or the store's production
    model, where it is, and which of the three it is."""
    from marketpredictor_train.store import ModelStore, read_model_file

    if path is not None and (models_dir is not None or version is not None):
        raise ConfigError(
            "A model file and a model store name two models; give a path, or a store "
            "(and maybe a version)"
        )
    if path is not None:
        where = Path(path).expanduser()
        return read_model_file(where), where, "model_file"
    store = ModelStore(Path(models_dir).expanduser() if models_dir else DEFAULT_MODELS_DIR)
    if version is not None:
        return store.load(version), store.path_of(version), "version"
    production = store.load_production()
    if production is None:
        raise StoreError(
            f"No production model in {store.models_dir}",
            hint="Train and promote one with `mptrain train`, or name a model: a version "
            "(--version V) or a file (--model-file PATH).",
        )
    return production, store.prod_path, "production"


def from_model_file(model_file: ModelFile, path: Path, target: Target) -> LoadedModel:
    """A :class:`LoadedModel` of an already verified model file."""
    from marketpredictor_train.models.trained import TrainedModel

    trained = TrainedModel.from_model_file(model_file, source=str(path))
    return LoadedModel(path=path, target=target, manifest=model_file.manifest, _trained=trained)


def _as_polars(ohlcv: Any) -> pl.DataFrame:
    import polars as pl

    if isinstance(ohlcv, pl.LazyFrame):
        return ohlcv.collect()
    if isinstance(ohlcv, pl.DataFrame):
        return ohlcv
    module = type(ohlcv).__module__
    if module.startswith("pandas"):
        frame = ohlcv
        index_name = frame.index.name
        if isinstance(index_name, str) and index_name.strip().lower() == "date":
            frame = frame.reset_index()
        return pl.from_pandas(frame)
    raise TypeError(
        f"expected a polars or pandas DataFrame of OHLCV bars, got {type(ohlcv).__name__}"
    )


def _too_short(frame: pl.DataFrame, warmup: int, version: str | None) -> DataError:
    counts = frame.group_by("ticker").len().sort("len", descending=True)
    shown = [f"{t} {n}" for t, n in counts.head(5).iter_rows()]
    more = f" and {counts.height - 5} more" if counts.height > 5 else ""
    model = f"Model {version}" if version else "The model"
    return DataError(
        f"Too little data to predict: {model} needs at least {warmup + 1} rows per ticker "
        f"(its indicators' warm-up is {warmup} rows), and no row has complete features "
        f"(rows per ticker: {', '.join(shown)}{more}).",
        hint="Give each ticker a longer history, e.g. the last year of daily bars.",
    )
