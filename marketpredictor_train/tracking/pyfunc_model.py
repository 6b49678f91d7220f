"""The MLflow model code of every registered mptrain version ("models from code").

MLflow copies this file into each logged model and runs it to build the pyfunc model; the
model's one artifact is the version's own ``.bin``, verified and loaded with
:func:`marketpredictor_train.load_model`. No Python object is pickled or unpickled.

``mlflow.pyfunc.load_model("models:/marketpredictor@champion").predict(bars)`` takes a
pandas DataFrame of daily OHLCV bars (the shapes ``mptrain predict`` reads: ``date, ticker,
open, high, low, close, volume``, any letter case, dates as text or timestamps) and returns
one row per (ticker, date) with complete features: ``ticker``, ``date`` (ISO text),
``probability_up`` and ``prediction`` (``up``/``down``), exactly as ``LoadedModel.predict``;
``mlflow models serve`` answers ``/invocations`` with the same rows.

Only MLflow runs this file; nothing in the package imports it.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from marketpredictor_train.tracking.registry import MODEL_ARTIFACT


class MptrainModel(PythonModel):
    """An mptrain model file served through MLflow's pyfunc interface."""

    def load_context(self, context) -> None:
        from marketpredictor_train import load_model

        self.model = load_model(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import polars as pl

        predictions = self.model.predict(model_input)
        return predictions.with_columns(pl.col("date").dt.to_string("%Y-%m-%d")).to_pandas()


mlflow.models.set_model(MptrainModel())
