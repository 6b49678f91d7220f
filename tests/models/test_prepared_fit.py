"""A model type's own training structure (XGBoost's quantised matrix, ``prepare_fit``),
built from rows read a batch at a time: the model fitted on it is the model ``fit`` makes
on the same rows as one matrix, byte for byte, and a run builds no float matrix of its
training rows and holds one fit's structure at a time."""

from __future__ import annotations

import numpy as np
import pytest

from marketpredictor_train.models.base import ArrayBatches
from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.models.xgb import XGBModelType
from marketpredictor_train.pipelines import train as train_pipeline


def _rows(n=3_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + rng.standard_normal(n) > 0).astype(np.int8)
    return x, y


@pytest.mark.parametrize(
    "params",
    [
        None,
        {"n_estimators": 20, "max_depth": 3, "subsample": 0.7, "colsample_bytree": 0.8},
        {"n_estimators": 20, "max_bin": 32},  # the matrix is binned as the model says
    ],
)
@pytest.mark.parametrize("batch", [500, 1024, 3_000])  # several batches, a ragged last one
def test_xgboost_fitted_on_its_prepared_matrix_is_the_model_fit_makes(params, batch):
    x, y = _rows()
    plain = XGBModelType(params, seed=7)
    plain.fit(x, y)
    prepared = XGBModelType(params, seed=7)
    prepared.fit_prepared(prepared.prepare_fit(ArrayBatches(x, y, size=batch)))
    assert prepared.to_bytes() == plain.to_bytes()
    np.testing.assert_array_equal(prepared.predict_proba(x), plain.predict_proba(x))
    np.testing.assert_array_equal(prepared.feature_importance(), plain.feature_importance())


def test_the_matrix_read_in_batches_has_the_cuts_of_the_whole_matrix():
    import xgboost

    x, y = _rows(20_000)
    x[::7, 2] = np.nan  # missing values, and ties
    x[:, 3] = np.round(x[:, 3], 1)
    whole = xgboost.QuantileDMatrix(x, label=y, max_bin=256)
    batched = XGBModelType().prepare_fit(ArrayBatches(x, y, size=3_000))
    for a, b in zip(whole.get_quantile_cut(), batched.get_quantile_cut(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(batched.get_label(), y.astype(np.float32))


def test_the_batch_iterator_keeps_no_rows_alive_once_the_matrix_is_built():
    import gc
    import weakref

    x, y = _rows()
    batches = ArrayBatches(x, y, size=1_000)
    seen = weakref.ref(batches)
    matrix = XGBModelType().prepare_fit(batches)
    del batches
    assert seen() is None  # no cycle, no cached class holds them (no gc.collect needed)
    gc.collect()
    assert matrix.num_row() == len(y)


def test_labels_of_one_class_are_refused_before_a_matrix_is_built():
    x, _ = _rows()
    with pytest.raises(ValueError, match="Invalid classes"):
        XGBModelType().prepare_fit(ArrayBatches(x, np.ones(len(x), dtype=np.int8)))


def test_a_model_type_without_a_structure_of_its_own_fits_on_the_arrays():
    rf = get_model_type("rf")
    x, y = _rows(300)
    assert rf().prepare_fit(ArrayBatches(x, y)) is None
    with pytest.raises(NotImplementedError):
        rf().fit_prepared(object())


def _settings(tmp_path, **overrides):
    from marketpredictor_train.config import load_settings

    return load_settings(
        source="sample",
        tickers="AAPL,MSFT",
        period="2y",
        cv_folds=2,
        mlflow=False,
        models_dir=tmp_path / "models",
        cache_dir=tmp_path / "cache",
        **overrides,
    )


@pytest.fixture
def small(tmp_path):
    from marketpredictor_train.pipelines.common import prepare_data
    from marketpredictor_train.progress import StepTimer

    settings = _settings(tmp_path)
    return settings, prepare_data(settings, StepTimer(), None)[1]


@pytest.mark.parametrize("max_bin", [None, 64])
def test_a_run_builds_each_structure_from_the_frame_and_fits_the_models_the_arrays_give(
    small, monkeypatch, max_bin
):
    """The calibration fit's structure is built, fitted and let go before the model's is
    built; no training matrix is made; and the two models are those fitted on arrays."""
    settings, dataset = small
    xgb = get_model_type("xgb")
    params = {**xgb.default_params, "n_estimators": 30}
    if max_bin is not None:  # e.g. from a best_hyperparameters.json written by hand
        params["max_bin"] = max_bin
    events = []
    release = train_pipeline._TrainingRows.release
    matrix = train_pipeline._TrainingRows.matrix
    prepare_fit = XGBModelType.prepare_fit
    fit_prepared = XGBModelType.fit_prepared

    def releasing(self):
        events.append("release")
        release(self)

    def whole_matrix(self):
        events.append("matrix")
        return matrix(self)

    def preparing(self, rows):
        events.append(f"prepare {len(rows.labels)}")
        return prepare_fit(self, rows)

    def fitting(self, prepared):
        events.append(f"fit {prepared.num_row()}")
        fit_prepared(self, prepared)

    monkeypatch.setattr(train_pipeline._TrainingRows, "release", releasing)
    monkeypatch.setattr(train_pipeline._TrainingRows, "matrix", whole_matrix)
    monkeypatch.setattr(XGBModelType, "prepare_fit", preparing)
    monkeypatch.setattr(XGBModelType, "fit_prepared", fitting)
    model, calibrator = train_pipeline.fit_model(settings, xgb, params, "cpu", dataset)
    assert calibrator is not None
    first = calibrator.to_dict()["fitted_on"]["train_rows"]
    n = dataset.train.height
    assert first < n
    assert events == [f"prepare {first}", f"fit {first}", f"prepare {n}", "release", f"fit {n}"]

    # the same run on the arrays (a type without prepare_fit) gives the same two models
    events.clear()
    monkeypatch.setattr(XGBModelType, "prepare_fit", lambda self, rows: None)
    plain, plain_calibrator = train_pipeline.fit_model(settings, xgb, params, "cpu", dataset)
    assert events == ["matrix", "release"]  # the calibration rows, then the matrix
    assert model.to_bytes() == plain.to_bytes()
    assert calibrator.to_dict() == plain_calibrator.to_dict()


def test_a_train_holds_no_training_features_or_price_history_while_the_model_fits(
    tmp_path, monkeypatch
):
    """The feature frame of the training part is let go once the model's structure is
    built (the calibration fit, before, still needs it), and the price history once the
    table is built: nothing of the run (its locals, the fit-threads block) keeps either
    alive while the model fits. What starts beside that fit starts after it begins."""
    import gc
    import weakref

    built = []
    prepare_data = train_pipeline.prepare_data

    def recording(settings, timer, progress):
        loaded, dataset = prepare_data(settings, timer, progress)
        built.append((weakref.ref(dataset.train), weakref.ref(loaded.frame)))
        return loaded, dataset

    alive_at_fit = []
    events = []
    fit_prepared = XGBModelType.fit_prepared
    release = train_pipeline._TrainingRows.release
    import_in_background = train_pipeline.import_in_background

    held = []  # the feature frame the training rows hold until they let it go

    def fitting(self, prepared):
        gc.collect()
        table, prices = built[0]
        features = held[0]() is not None if held else True
        alive_at_fit.append((table() is not None, features, prices() is not None))
        events.append("fit")
        fit_prepared(self, prepared)

    def releasing(self):
        events.append("release")
        held.append(weakref.ref(self._frame))
        release(self)

    def importing(modules, *, after=0.0):
        if "arch.bootstrap" in modules:  # the evaluation's, not the model library's
            events.append(f"imports after {after}")
        import_in_background(modules, after=after)

    monkeypatch.setattr(train_pipeline, "prepare_data", recording)
    monkeypatch.setattr(XGBModelType, "fit_prepared", fitting)
    monkeypatch.setattr(train_pipeline._TrainingRows, "release", releasing)
    monkeypatch.setattr(train_pipeline, "import_in_background", importing)
    from marketpredictor_train.tracking.mlflow_runs import TrainingRun

    start = TrainingRun.start

    def starting(self, *, after=0.0):
        if not self._started:
            events.append(f"mlflow after {after}")
        start(self, after=after)

    monkeypatch.setattr(TrainingRun, "start", starting)
    result = train_pipeline.train(_settings(tmp_path, dry_run=True))
    assert result.metrics["accuracy"] is not None
    # (the table, the features, the prices) at the calibration fit, then the model's
    assert alive_at_fit == [(False, True, False), (False, False, False)]
    # the MLflow run opens and validation's libraries load while the model fits (once
    # the frame's pages are back with the system), not while its matrices are built
    later = train_pipeline.AFTER_RELEASE_S
    assert later > 0
    assert events == ["fit", "release", f"mlflow after {later}", f"imports after {later}", "fit"]


def test_a_fit_takes_the_threads_a_finished_fit_gives_back_and_stays_the_same(monkeypatch):
    """Two tuning lanes share two threads; when one ends after round 3 of the other's
    XGBoost fold fit, that fit goes from one thread to two at its next round, and its
    predictions are the ones a plain fit makes."""
    import json

    from marketpredictor_train.models import xgb as xgb_module
    from marketpredictor_train.models.threads import SharedThreads, fit_threads

    x, y = _rows()
    params = {"n_estimators": 12, "subsample": 0.8, "colsample_bytree": 0.8}
    share = SharedThreads(2, 2)
    assert (share.threads(0), share.threads(1)) == (1, 1)
    original = xgb_module._follow_threads
    seen = []

    def following():
        callback = original()
        after = callback.after_iteration

        def hook(model, epoch, evals_log):
            if epoch == 3:
                share.done(1)
            stop = after(model, epoch, evals_log)
            seen.append(json.loads(model.save_config())["learner"]["generic_param"]["nthread"])
            return stop

        callback.after_iteration = hook
        return callback

    monkeypatch.setattr(xgb_module, "_follow_threads", following)
    fold = XGBModelType.prepare_fold(x[:2000], y[:2000], x[2000:], y[2000:])
    with share.party(0):
        proba = XGBModelType(params, seed=5).fit_fold(fold)
        assert fit_threads() == 2
    assert seen == ["1"] * 3 + ["2"] * 9
    plain = XGBModelType(params, seed=5)
    plain.fit(x[:2000], y[:2000])
    np.testing.assert_array_equal(proba, plain.predict_proba(x[2000:]))
    assert SharedThreads(3, 2).threads(0) == 2 and SharedThreads(3, 2).threads(1) == 1
