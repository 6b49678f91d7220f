"""The pruner judges the value a trial just reported against completed trials at the same
step, not the trial's best value so far."""

from __future__ import annotations

import optuna
import pytest

from marketpredictor_train.tuning.pruning import LatestValueMedianPruner


def _study_with_completed(curves: list[dict[int, float]], pruner) -> optuna.Study:
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for curve in curves:
        trial = study.ask()
        for step, value in curve.items():
            trial.report(value, step)
        study.tell(trial, list(curve.values())[-1])
    return study


def _decision(study: optuna.Study, curve: dict[int, float]) -> bool:
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    return trial.should_prune()


FINISHED = [{10: 0.690, 20: 0.692}, {10: 0.691, 20: 0.693}, {10: 0.689, 20: 0.691}]


def test_an_overfitting_trial_is_pruned_on_its_latest_value():
    """Good at step 10, worse than every completed trial at step 20: pruned, where the
    best-so-far rule would keep it."""
    pruner = LatestValueMedianPruner(n_startup_trials=3, n_min_trials=3)
    study = _study_with_completed(FINISHED, pruner)
    assert _decision(study, {10: 0.680, 20: 0.700}) is True
    best_so_far = _study_with_completed(
        FINISHED, optuna.pruners.MedianPruner(n_startup_trials=3, n_min_trials=3)
    )
    assert not _decision(best_so_far, {10: 0.680, 20: 0.700})


def test_a_trial_at_or_below_the_median_goes_on():
    study = _study_with_completed(FINISHED, LatestValueMedianPruner(n_startup_trials=3))
    assert _decision(study, {10: 0.700, 20: 0.692}) is False


def test_nothing_is_pruned_before_the_startup_trials_completed():
    study = _study_with_completed(FINISHED[:2], LatestValueMedianPruner(n_startup_trials=3))
    assert _decision(study, {10: 0.9, 20: 0.9}) is False


def test_a_step_too_few_completed_trials_reached_is_not_judged():
    pruner = LatestValueMedianPruner(n_startup_trials=3, n_min_trials=3)
    study = _study_with_completed(FINISHED, pruner)
    assert _decision(study, {30: 0.9}) is False


def test_nan_is_pruned():
    study = _study_with_completed(FINISHED, LatestValueMedianPruner(n_startup_trials=3))
    assert _decision(study, {10: float("nan")}) is True


@pytest.mark.parametrize("kwargs", [{"n_startup_trials": -1}, {"n_min_trials": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LatestValueMedianPruner(**kwargs)
