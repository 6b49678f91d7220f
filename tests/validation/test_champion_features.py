"""The production model is scored on the run's own backtest features when its feature
spec is the run's (no second feature build), with the same result as rebuilding them."""

from __future__ import annotations

import numpy as np
import pytest

from marketpredictor_train.dataset import build_dataset
from marketpredictor_train.features import FeatureSpec, Indicator
from marketpredictor_train.models.rf import RandomForestModelType
from marketpredictor_train.models.threads import using_threads
from marketpredictor_train.store.modelfile import ModelFile
from marketpredictor_train.testing.synthetic import synthetic_ohlcv
from marketpredictor_train.validation.backtest import score_model_file


@pytest.mark.slow
def test_the_same_spec_reuses_the_rows_features_with_the_same_scores(monkeypatch):
    ohlcv = synthetic_ohlcv(3, 500, seed=4)
    spec = FeatureSpec.of(Indicator.create("roc", length=1), Indicator.create("rsi", length=5))
    dataset = build_dataset(ohlcv, spec, horizon=1, dead_band=0.0, backtest_months=3, purge_gap=1)
    # One thread (saved with the forest): its averaged probabilities are summed in the
    # order the threads finish.
    model = RandomForestModelType({"n_estimators": 5, "max_depth": 3}, seed=1)
    with using_threads(1):
        model.fit(*dataset.xy(dataset.train))
    production = ModelFile(
        manifest={
            "model_type": "rf",
            "version": "v0001",
            "params": model.params,
            "feature_spec": spec.to_dict(),
            "feature_spec_hash": spec.hash,
            "feature_columns": dataset.feature_columns,
            "label": {"horizon": 1, "dead_band": 0.0},
        },
        payload=model.to_bytes(),
    )
    rebuilt = score_model_file(production, ohlcv, dataset.backtest)

    builds = []
    import marketpredictor_train.features as features

    original = features.build_features
    monkeypatch.setattr(
        features, "build_features", lambda *a, **k: builds.append(1) or original(*a, **k)
    )
    reused = score_model_file(production, ohlcv, dataset.backtest, rows_spec_hash=spec.hash)
    assert builds == []
    np.testing.assert_array_equal(reused[0], rebuilt[0])
    np.testing.assert_array_equal(reused[1], rebuilt[1])
    # another spec's rows: the features are rebuilt from the prices
    score_model_file(production, ohlcv, dataset.backtest, rows_spec_hash="other")
    assert builds == [1]
