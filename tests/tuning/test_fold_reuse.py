"""Tuning reuses each fold's prepared data across the trials of a study (XGBoost's
quantised matrices, built once), with the same scores as fitting on fresh row copies."""

from __future__ import annotations

import optuna
import pytest

from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.tuning.cv import walk_forward_folds
from marketpredictor_train.tuning.objective import Objective, TuningData


def _data(dataset, dtype="float32"):
    X, y = dataset.xy(dataset.train, dtype)
    dates = dataset.train.get_column("date").to_numpy()
    return TuningData(X, y, walk_forward_folds(dates, y, n_folds=2, purge_gap=1))


def _values(objective, n_trials=3):
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=5), pruner=optuna.pruners.NopPruner()
    )
    study.optimize(objective, n_trials=n_trials)
    return [t.value for t in study.trials], [t.params for t in study.trials]


@pytest.mark.slow
def test_reused_fold_matrices_score_every_trial_as_fresh_ones(small_dataset, monkeypatch):
    xgb = get_model_type("xgb")
    calls = []
    original = xgb.prepare_fold.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(xgb, "prepare_fold", classmethod(counting))
    reused = Objective(xgb, _data(small_dataset), device="cpu", seed=1, pruning=False)
    fresh = Objective(
        xgb,
        _data(small_dataset, "float64"),
        device="cpu",
        seed=1,
        pruning=False,
        reuse_folds=False,
    )
    assert reused.reuse_folds and not fresh.reuse_folds
    values, params = _values(reused)
    assert len(calls) == 2  # once per fold for the whole study, not per trial
    assert _values(fresh) == (values, params)


def test_a_model_type_without_its_own_preparation_keeps_nothing(small_dataset):
    objective = Objective(
        get_model_type("rf"),
        _data(small_dataset, "float64"),
        device="cpu",
        seed=1,
        pruning=False,
    )
    assert not objective.reuse_folds
    _values(objective, n_trials=1)
    assert objective._folds == {}
