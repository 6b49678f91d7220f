"""Tuning on one machine: the objective and its pruning wiring, the baseline trial, studies
that resume, the backtest never seen, and best_hyperparameters.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
import structlog

from marketpredictor_train.api import optimize
from marketpredictor_train.errors import ConfigError, TrainingError
from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.tuning import tune
from marketpredictor_train.tuning.best_params import read_best_params, write_best_params
from marketpredictor_train.tuning.cv import walk_forward_folds
from marketpredictor_train.tuning.objective import (
    REPORT_EVERY,
    STEP_STRIDE,
    WARMUP_ROUNDS,
    FoldReporter,
    Objective,
    TuningData,
)


class _PruneAll(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def _tuning_data(dataset, n_folds=2):
    X, y = dataset.xy(dataset.train)
    dates = dataset.train.get_column("date").to_numpy()
    return TuningData(X, y, walk_forward_folds(dates, y, n_folds=n_folds, purge_gap=1))


def test_fold_reporter_maps_rounds_to_the_folds_own_steps():
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    reporter = FoldReporter(trial, 2, pruning=True)
    for step in range(40):
        reporter.report(0.69, step)
    reported = sorted(study.trials[0].intermediate_values)
    expected = [
        2 * STEP_STRIDE + s
        for s in range(40)
        if s + 1 >= WARMUP_ROUNDS and (s + 1) % REPORT_EVERY == 0
    ]
    assert reported == expected
    assert reporter.rounds == 40 and reporter.reports == len(expected)


def test_a_pruned_boosting_trial_stops_mid_fold_and_records_the_rounds_fitted(small_dataset):
    """xgb's pruning callback, through the fold reporter, stops the first fold at the first
    reported round; the trial records one fold fit and that many rounds."""
    objective = Objective(
        get_model_type("xgb"), _tuning_data(small_dataset), device="cpu", seed=1, pruning=True
    )
    study = optuna.create_study(pruner=_PruneAll())
    study.enqueue_trial({"n_estimators": 100})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["fits"] == 1
    assert trial.user_attrs["boosting_rounds"] == WARMUP_ROUNDS
    assert list(trial.intermediate_values) == [WARMUP_ROUNDS - 1]


def test_a_model_without_rounds_is_pruned_between_folds(small_dataset):
    objective = Objective(
        get_model_type("rf"), _tuning_data(small_dataset, 3), device="cpu", seed=1, pruning=True
    )
    study = optuna.create_study(pruner=_PruneAll())
    study.enqueue_trial({"n_estimators": 50, "max_depth": 3})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["fits"] == 1
    assert list(trial.intermediate_values) == [STEP_STRIDE - 1]


@pytest.mark.slow
def test_without_pruning_every_fold_runs_every_round(small_dataset):
    objective = Objective(
        get_model_type("xgb"), _tuning_data(small_dataset), device="cpu", seed=1, pruning=False
    )
    study = optuna.create_study(pruner=_PruneAll())
    study.enqueue_trial({"n_estimators": 60})
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["fits"] == 2 and trial.user_attrs["boosting_rounds"] == 120
    assert trial.intermediate_values == {}
    assert 0.6 < trial.value < 1.0  # validation log loss around ln 2 on daily direction


@pytest.mark.slow
def test_the_backtest_never_informs_tuning(small_dataset, small_settings):
    """Scrambling every backtest row (features and labels) changes no trial's score."""
    scrambled_backtest = small_dataset.backtest.with_columns(
        pl.col("label").shuffle(seed=3),
        *[pl.col(c).shuffle(seed=4) * 7.0 for c in small_dataset.feature_columns],
    )
    scrambled = type(small_dataset)(
        small_dataset.spec,
        small_dataset.feature_columns,
        small_dataset.train,
        scrambled_backtest,
        small_dataset.window,
    )
    xgb = get_model_type("xgb")
    first = tune(small_settings(models_dir="a", trials=2), xgb, small_dataset, device="cpu")
    second = tune(small_settings(models_dir="b", trials=2), xgb, scrambled, device="cpu")
    assert first.best_value == second.best_value
    assert first.best_params == second.best_params


@pytest.mark.slow
def test_the_first_trial_replays_the_defaults_without_a_production_model(
    small_dataset, small_settings
):
    settings = small_settings(trials=1)
    outcome = tune(settings, get_model_type("xgb"), small_dataset, device="cpu")
    assert outcome.baseline == "defaults"
    study = optuna.load_study(study_name=outcome.study_name, storage=_url(settings))
    first = study.trials[0]
    defaults = get_model_type("xgb").default_params
    assert first.params == {k: defaults[k] for k in first.params}


@pytest.mark.slow
def test_the_first_trial_replays_the_production_model_of_the_same_type(
    small_dataset, small_settings
):
    from marketpredictor_train.store import ModelStore

    settings = small_settings(trials=1)
    store = ModelStore(settings.models_dir)
    production_params = {"n_estimators": 77, "max_depth": 4, "learning_rate": 0.05}
    stored = store.save({"model_type": "xgb", "params": production_params}, b"{}")
    store.promote(stored.version, reason="test")
    outcome = tune(settings, get_model_type("xgb"), small_dataset, device="cpu")
    assert outcome.baseline == f"production model {stored.version}"
    study = optuna.load_study(study_name=outcome.study_name, storage=_url(settings))
    assert {k: study.trials[0].params[k] for k in production_params} == production_params
    # a production model of another type is not replayed for this one
    other = tune(settings, get_model_type("lgb"), small_dataset, device="cpu")
    assert other.baseline == "defaults"


@pytest.mark.slow
def test_a_rerun_resumes_the_same_study(small_dataset, small_settings):
    settings = small_settings(trials=2)
    first = tune(settings, get_model_type("xgb"), small_dataset, device="cpu")
    second = tune(settings, get_model_type("xgb"), small_dataset, device="cpu")
    assert first.study_name == second.study_name
    assert sum(second.study_trials_by_state.values()) == 4
    assert second.trials_run == 2
    assert second.baseline is None  # the defaults already ran in this study


@pytest.mark.slow
def test_a_study_of_another_model_type_is_refused(small_dataset, small_settings):
    settings = small_settings(trials=1, study_name="shared")
    tune(settings, get_model_type("xgb"), small_dataset, device="cpu")
    with pytest.raises(ConfigError, match="tunes model type 'xgb'"):
        tune(settings, get_model_type("lgb"), small_dataset, device="cpu")


@pytest.mark.slow
def test_progress_reports_each_trial_with_the_best_score(small_dataset, small_settings):
    events = []
    tune(
        small_settings(trials=2),
        get_model_type("xgb"),
        small_dataset,
        device="cpu",
        progress=events.append,
    )
    trials = [e for e in events if e.stage == "trials"]
    assert [e.completed for e in trials] == [0, 1, 2]
    assert all(e.total == 2 for e in trials)
    assert trials[-1].description.startswith("best log loss 0.")


@pytest.mark.slow
def test_optimize_writes_best_hyperparameters_json(small_settings):
    settings = small_settings(trials=2)
    result = optimize(settings)
    document = json.loads(Path(result.params_file).read_text())
    assert Path(result.params_file) == Path(settings.models_dir) / "best_hyperparameters.json"
    assert document["model_type"] == "xgb"
    assert document["params"] == result.tuning.best_params
    assert document["score"] == pytest.approx(result.tuning.best_value)
    assert document["metric"] == "log_loss" and document["direction"] == "minimize"
    assert document["study_name"] == result.tuning.study_name
    assert sum(document["trials"].values()) == 2
    assert document["data_window"]["tickers"] == ["AAPL", "MSFT"]
    assert document["data_window"]["train_end"] < document["data_window"]["backtest_start"]
    assert document["horizon"] == 1 and document["date"]
    assert not list(Path(settings.models_dir).glob(".*.tmp"))


def test_an_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "models" / "best_hyperparameters.json"
    write_best_params(path, {"model_type": "xgb", "params": {"max_depth": 3}})
    with pytest.raises(TypeError):
        write_best_params(path, {"model_type": "xgb", "params": {"bad": object()}})
    assert read_best_params(path)["params"] == {"max_depth": 3}
    assert [p.name for p in path.parent.iterdir()] == ["best_hyperparameters.json"]


@pytest.mark.parametrize("content", ["{not json", "[]", '{"model_type": "xgb"}'])
def test_a_malformed_params_file_is_ignored_with_a_warning(tmp_path, content):
    path = tmp_path / "best_hyperparameters.json"
    path.write_text(content)
    with structlog.testing.capture_logs() as logs:
        assert read_best_params(path) is None
    assert any(entry["log_level"] == "warning" for entry in logs)


@pytest.mark.slow
def test_no_completed_trial_is_a_training_error(small_dataset, small_settings, monkeypatch):
    from marketpredictor_train.tuning import pruning

    monkeypatch.setattr(pruning, "LatestValueMedianPruner", lambda **kw: _PruneAll())
    with pytest.raises(TrainingError, match="no trial"):
        tune(small_settings(trials=2), get_model_type("xgb"), small_dataset, device="cpu")


def test_bad_storage_url_is_a_config_error(small_dataset, small_settings):
    with pytest.raises(ConfigError, match="storage"):
        tune(
            small_settings(storage="not a url"), get_model_type("xgb"), small_dataset, device="cpu"
        )


@pytest.mark.slow
def test_unreachable_database_is_a_training_error(small_dataset, small_settings):
    from tests.tuning.helpers import free_port

    url = f"postgresql://nobody@127.0.0.1:{free_port()}/optuna"
    with pytest.raises(TrainingError, match="Cannot reach the study storage"):
        tune(small_settings(storage=url), get_model_type("xgb"), small_dataset, device="cpu")


@pytest.mark.slow
def test_cv_folds_use_the_purge_gap_of_horizon_and_embargo(small_dataset, small_settings):
    outcome = tune(
        small_settings(trials=1, embargo_days=3), get_model_type("xgb"), small_dataset, device="cpu"
    )
    calendar = np.unique(small_dataset.train.get_column("date").to_numpy())
    for fold in outcome.folds:
        last = np.searchsorted(calendar, np.datetime64(fold["train_end"]))
        first = np.searchsorted(calendar, np.datetime64(fold["valid_start"]))
        assert first - last - 1 == 4  # horizon 1 + embargo 3


def _url(settings):
    from marketpredictor_train.tuning.storage import storage_url

    return storage_url(settings)
