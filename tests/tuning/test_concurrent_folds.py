"""Folds of a trial fitted side by side give the study one by one gives: the same pruning
decisions at the same steps, the same reports, values and parameters."""

from __future__ import annotations

import optuna
import pytest

from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.models.threads import using_threads
from marketpredictor_train.tuning.cv import walk_forward_folds
from marketpredictor_train.tuning.objective import (
    STEP_STRIDE,
    Objective,
    TuningData,
    _plan,
)
from marketpredictor_train.tuning.pruning import LatestValueMedianPruner

XGB = get_model_type("xgb")


def _data(dataset, n_folds=3):
    X, y = dataset.xy(dataset.train, "float32")
    dates = dataset.train.get_column("date").to_numpy()
    return TuningData(X, y, walk_forward_folds(dates, y, n_folds=n_folds, purge_gap=1))


class _Scripted(optuna.pruners.BasePruner):
    """Prunes at the given steps, judged either way (one by one through prune(), side by
    side through judge()); records every step it was asked about."""

    def __init__(self, steps):
        self.steps = set(steps)
        self.asked = []

    def judge(self, study, number, step, value):
        self.asked.append(step)
        return step in self.steps

    def prune(self, study, trial):
        return self.judge(study, trial.number, trial.last_step, 0.0)


def _study(objective, pruner, trials, params=None, sampler=None):
    study = optuna.create_study(
        pruner=pruner, sampler=sampler or optuna.samplers.RandomSampler(seed=3)
    )
    for _ in range(trials if params else 0):
        study.enqueue_trial(params)
    with using_threads(2):
        study.optimize(objective, n_trials=trials)
    return study


def _seen(study):
    """What a study holds of its trials, beyond the work counters."""
    return [
        (
            t.state,
            t.params,
            t.value,
            t.intermediate_values,
            t.user_attrs.get("fold_log_loss"),
            t.user_attrs.get("cv_accuracy"),
        )
        for t in study.trials
    ]


def _both(dataset, pruner_factory, trials, params=None, sampler_factory=None):
    data = _data(dataset)
    studies = []
    for concurrent in (False, True):
        objective = Objective(XGB, data, device="cpu", seed=1, pruning=True, concurrent=concurrent)
        sampler = sampler_factory() if sampler_factory else None
        studies.append(_study(objective, pruner_factory(), trials, params, sampler))
    return studies


def test_the_lanes_share_the_rows_evenly_and_fit_small_folds_first():
    class F:
        def __init__(self, index, rows):
            self.index, self.train_rows = index, range(rows)

    folds = [F(0, 100), F(1, 200), F(2, 300), F(3, 400)]
    plan = _plan(folds, 2)
    assert sorted([f.index for f in lane] for lane in plan) == [[0, 3], [1, 2]]
    assert [f.index for f in _plan(folds, 1)[0]] == [0, 1, 2, 3]
    assert len(_plan(folds[:2], 2)) == 2


def test_lanes_need_the_cpu_a_judging_pruner_and_folds_built_once(small_dataset):
    data = _data(small_dataset)
    study = optuna.create_study(pruner=_Scripted([]))
    trial = study.ask()
    with using_threads(2):
        assert Objective(XGB, data, device="cpu", seed=1, pruning=True).lanes(trial) == 2
        assert Objective(XGB, data, device="cuda", seed=1, pruning=True).lanes(trial) == 1
        fresh = Objective(XGB, data, device="cpu", seed=1, pruning=True, reuse_folds=False)
        assert fresh.lanes(trial) == 1
        rf = Objective(get_model_type("rf"), data, device="cpu", seed=1, pruning=True)
        assert rf.lanes(trial) == 1
        plain = optuna.create_study(pruner=optuna.pruners.MedianPruner()).ask()
        assert Objective(XGB, data, device="cpu", seed=1, pruning=True).lanes(plain) == 1
        unpruned = Objective(XGB, data, device="cpu", seed=1, pruning=False)
        assert unpruned.lanes(plain) == 2
    with using_threads(1):
        assert Objective(XGB, data, device="cpu", seed=1, pruning=True).lanes(trial) == 1


@pytest.mark.parametrize(
    ("pruned_at", "expected_steps", "losses"),
    [
        # fold 2 would prune at round 30, but fold 0 prunes first at round 40: one by one
        # never reached fold 2, so the trial holds fold 0's reports up to round 40 only
        ((2 * STEP_STRIDE + 29, 39), [19, 29, 39], 0),
        # no round is pruned; the trial is pruned after fold 1 ends
        (
            (2 * STEP_STRIDE - 1,),
            [19, 29, 39, 49, STEP_STRIDE - 1, *(STEP_STRIDE + s for s in (19, 29, 39, 49))]
            + [2 * STEP_STRIDE - 1],
            2,
        ),
    ],
)
def test_the_first_pruning_in_fold_order_decides_as_one_by_one(
    small_dataset, pruned_at, expected_steps, losses
):
    studies = _both(small_dataset, lambda: _Scripted(pruned_at), 1, {"n_estimators": 50})
    one_by_one, side_by_side = (s.trials[0] for s in studies)
    assert side_by_side.state == optuna.trial.TrialState.PRUNED
    assert _seen(studies[1]) == _seen(studies[0])
    assert sorted(side_by_side.intermediate_values) == expected_steps
    assert len(side_by_side.user_attrs["fold_log_loss"]) == losses
    # the work counters say what was fitted, beside the outcome too
    assert side_by_side.user_attrs["fits"] >= one_by_one.user_attrs["fits"]
    assert side_by_side.user_attrs["boosting_rounds"] >= one_by_one.user_attrs["boosting_rounds"]


@pytest.mark.slow
def test_a_seeded_pruned_study_is_the_same_trial_for_trial(small_dataset):
    """TPE with the real pruner over 8 trials (some pruned, some complete): every trial's
    parameters, state, value and reports are the same whether folds run side by side."""
    studies = _both(
        small_dataset,
        lambda: LatestValueMedianPruner(n_startup_trials=2, n_min_trials=1),
        8,
        sampler_factory=lambda: optuna.samplers.TPESampler(seed=11, n_startup_trials=3),
    )
    assert _seen(studies[1]) == _seen(studies[0])
    states = {t.state for t in studies[1].trials}
    assert optuna.trial.TrialState.PRUNED in states
    assert optuna.trial.TrialState.COMPLETE in states


def test_a_failing_fold_fails_the_trial_and_stops_the_other_lane(small_dataset, monkeypatch):
    objective = Objective(XGB, _data(small_dataset), device="cpu", seed=1, pruning=False)
    original = XGB.fit_fold

    def failing(self, fold, *, trial=None):
        if trial._offset == 2 * STEP_STRIDE:
            raise RuntimeError("fold 2 broke")
        return original(self, fold, trial=trial)

    monkeypatch.setattr(XGB, "fit_fold", failing)
    study = optuna.create_study()
    study.enqueue_trial({"n_estimators": 50})
    with using_threads(2), pytest.raises(RuntimeError, match="fold 2 broke"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_ctrl_c_stops_a_trial_whose_folds_run_side_by_side_at_once():
    """SIGINT the kernel hands to a lane's thread still stops the trial promptly (the
    trial's thread waits in short joins), and the lanes stop at their next round."""
    import signal
    import threading
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    days = np.repeat(np.arange("2020-01-01", "2021-01-01", dtype="datetime64[D]"), 500)
    X = rng.standard_normal((days.size, 8)).astype(np.float32)
    y = (rng.random(days.size) > 0.5).astype(np.int8)
    data = TuningData(X, y, walk_forward_folds(days, y, n_folds=2, purge_gap=1))
    objective = Objective(XGB, data, device="cpu", seed=1, pruning=False)
    study = optuna.create_study()
    study.enqueue_trial({"n_estimators": 5000, "max_depth": 8})  # a minute or more a fold

    def interrupt():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lanes = [t for t in threading.enumerate() if t.name.startswith("mptrain-fold-lane")]
            if lanes:
                time.sleep(0.5)  # the lanes are fitting
                signal.pthread_kill(lanes[0].ident, signal.SIGINT)
                return
            time.sleep(0.05)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with using_threads(2), pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=1)
    assert time.monotonic() - started < 20  # one fold alone takes longer
    deadline = time.monotonic() + 10
    while any(t.name.startswith("mptrain-fold-lane") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the lanes kept fitting after Ctrl-C"
        time.sleep(0.05)
