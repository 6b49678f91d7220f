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


def _objective(model_cls, dataset, *, dtype="float64", seed=1, pruning=False, reuse=True):
    return Objective(
        model_cls,
        _data(dataset, dtype),
        device="cpu",
        seed=seed,
        pruning=pruning,
        reuse_folds=reuse,
    )


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
    reused = _objective(xgb, small_dataset, dtype="float32")
    fresh = _objective(xgb, small_dataset, reuse=False)
    assert reused.reuse_folds and not fresh.reuse_folds
    values, params = _values(reused)
    assert len(calls) == 2  # once per fold for the whole study, not per trial
    assert _values(fresh) == (values, params)


def test_a_model_type_without_its_own_preparation_keeps_nothing(small_dataset):
    objective = _objective(get_model_type("rf"), small_dataset)
    assert not objective.reuse_folds
    _values(objective, n_trials=1)
    assert objective._folds == {}


def test_xgb_measures_the_validation_loss_only_at_the_judged_rounds_with_the_same_values(
    small_dataset,
):
    """With the tuner's fold reporter, xgb evaluates the validation rows only at the
    rounds the reporter judges; the values reported and the predictions are the ones
    XGBoost's every-round evaluation (the pruning callback's path) gives."""
    import numpy as np

    from marketpredictor_train.tuning.objective import FoldReporter

    xgb = get_model_type("xgb")
    data = _data(small_dataset)
    objective = Objective(xgb, data, device="cpu", seed=1, pruning=True)
    fold = objective.fold_data(data.folds[1])
    params = {**xgb.default_params, "n_estimators": 45, "subsample": 0.8}

    class Plain:
        """A trial as the pruning callback sees it, without the reporter's rounds."""

        def __init__(self, trial):
            self.reporter = FoldReporter(trial, 1, pruning=True)
            self.study = trial.study

        def report(self, value, step):
            self.reporter.report(value, step)

        def should_prune(self):
            return self.reporter.should_prune()

    outcomes = []
    for wrap in (lambda r: r, lambda r: Plain(r._trial)):
        study = optuna.create_study(pruner=optuna.pruners.NopPruner())
        trial = study.ask()
        reporter = wrap(FoldReporter(trial, 1, pruning=True))
        proba = xgb(params, seed=1).fit_fold(fold, trial=reporter)
        outcomes.append((study.trials[0].intermediate_values, proba))
    (sparse, p_sparse), (every, p_every) = outcomes
    assert sorted(sparse) == [1_000_019, 1_000_029, 1_000_039]
    assert sparse == every
    np.testing.assert_array_equal(p_sparse, p_every)


def _counting_datasets(monkeypatch):
    """Count the LightGBM Datasets built (constructed into LightGBM's own bins)."""
    import lightgbm

    built = []
    original = lightgbm.Dataset.construct

    def construct(self):
        if self._handle is None:
            built.append(self)
        return original(self)

    monkeypatch.setattr(lightgbm.Dataset, "construct", construct)
    return built


def test_lgb_builds_each_folds_datasets_once_and_scores_trials_as_fresh_fits(
    small_dataset, monkeypatch
):
    """The lgb fold Datasets are built once per study (two per fold: training and
    validation rows) and every trial scores as LGBMClassifier fits on fresh row copies:
    the same values, parameters and fold log losses."""
    lgb = get_model_type("lgb")
    built = _counting_datasets(monkeypatch)
    reused = _objective(lgb, small_dataset)
    assert reused.reuse_folds and not reused.concurrent
    values, params = _values(reused)
    assert len(built) == 4
    fresh = _objective(lgb, small_dataset, reuse=False)
    built.clear()
    assert _values(fresh) == (values, params)
    assert len(built) == 3 * 2 * 2  # every fit builds its own pair


def test_lgb_fold_datasets_bin_with_the_studys_seed(small_dataset, monkeypatch):
    """With fewer bin-sampling rows than the fold has, LightGBM draws the rows its bin
    bounds come from with the seed: the reused Datasets draw with the study's, as the
    fresh fits do, and another seed gives other scores."""
    lgb = get_model_type("lgb")
    monkeypatch.setattr(lgb, "default_params", {**lgb.default_params, "subsample_for_bin": 60})

    def values(seed, reuse):
        objective = _objective(lgb, small_dataset, seed=seed, reuse=reuse)
        return _values(objective, n_trials=2)[0]

    reused = values(1, True)
    assert reused == values(1, False)
    assert reused != values(2, True)


def test_lgb_reused_datasets_prune_as_fresh_fits(small_dataset):
    """With pruning, the rounds reported from reused Datasets are those of fresh fits, so
    the pruner decides alike: the same trial states, reports and values."""
    lgb = get_model_type("lgb")

    def study(reuse):
        objective = _objective(lgb, small_dataset, pruning=True, reuse=reuse)
        run = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=3),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
        )
        run.optimize(objective, n_trials=4)
        return [(t.state, t.value, t.intermediate_values) for t in run.trials]

    reused = study(True)
    assert any(state == optuna.trial.TrialState.PRUNED for state, _, _ in reused)
    assert reused == study(False)
