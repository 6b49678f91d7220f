"""--device resolution (auto falls back cleanly without a GPU) and the safety properties of
the built-in model types' payloads beyond the shared contract."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from marketpredictor_train.errors import ConfigError, ModelFileError
from marketpredictor_train.models import device as device_mod
from marketpredictor_train.models.registry import available_model_types, get_model_type


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(device_mod, "gpu_present", lambda: False)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(device_mod, "gpu_present", lambda: True)


@pytest.mark.parametrize("name", ["xgb", "lgb", "rf"])
def test_auto_falls_back_to_cpu_without_a_gpu(no_gpu, name):
    assert device_mod.resolve_device("auto", get_model_type(name)) == "cpu"


@pytest.mark.parametrize("name", ["xgb", "lgb"])
def test_explicit_cuda_without_a_gpu_is_a_config_error(no_gpu, name):
    with pytest.raises(ConfigError, match="no GPU"):
        device_mod.resolve_device("cuda", get_model_type(name))


def test_cuda_for_a_cpu_only_type_fits_on_the_cpu(gpu):
    assert device_mod.resolve_device("cuda", get_model_type("rf")) == "cpu"


def test_auto_uses_the_gpu_when_present_and_usable(gpu, monkeypatch):
    xgb = get_model_type("xgb")
    monkeypatch.setattr(xgb, "gpu_available", classmethod(lambda cls: True))
    assert device_mod.resolve_device("auto", xgb) == "cuda"


def test_auto_falls_back_when_the_library_cannot_use_the_gpu(gpu, monkeypatch):
    lgb = get_model_type("lgb")
    monkeypatch.setattr(lgb, "gpu_available", classmethod(lambda cls: False))
    assert device_mod.resolve_device("auto", lgb) == "cpu"
    with pytest.raises(ConfigError, match="cannot use it"):
        device_mod.resolve_device("cuda", lgb)


def test_cpu_is_always_cpu(gpu):
    assert device_mod.resolve_device("cpu", get_model_type("xgb")) == "cpu"


def test_hidden_gpus_count_as_absent(monkeypatch):
    device_mod.gpu_present.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    try:
        assert device_mod.gpu_present() is False
    finally:
        device_mod.gpu_present.cache_clear()


def test_lightgbm_here_has_no_cuda_build_and_says_so():
    """The PyPI LightGBM wheel is CPU-only; the probe must answer False, not crash."""
    assert get_model_type("lgb").gpu_available() is False


def test_builtins_are_registered_with_their_package():
    types = available_model_types()
    for name in ("xgb", "rf", "lgb"):
        assert types[name] == "marketpredictor-train"


def _xy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.slow
def test_rf_payload_is_a_skops_zip_not_a_pickle():
    rf = get_model_type("rf")({"n_estimators": 5})
    rf.fit(*_xy())
    payload = rf.to_bytes()
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        assert "schema.json" in zf.namelist()


@pytest.mark.slow
def test_rf_refuses_a_skops_file_with_untrusted_types():
    """A skops file naming os.system (through a FunctionTransformer) must not load."""
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    payload = skops.io.dumps(FunctionTransformer(func=os.system))
    with pytest.raises(ModelFileError, match="skops"):
        get_model_type("rf").from_bytes(payload)


@pytest.mark.slow
def test_rf_refuses_another_trusted_estimator():
    import skops.io
    from sklearn.tree import DecisionTreeClassifier

    payload = skops.io.dumps(DecisionTreeClassifier().fit(*_xy()))
    with pytest.raises(ModelFileError, match="not a RandomForestClassifier"):
        get_model_type("rf").from_bytes(payload)


def test_lgb_bagging_is_on_so_subsample_takes_effect():
    a = get_model_type("lgb")({"n_estimators": 20, "subsample": 0.5}, seed=1)
    b = get_model_type("lgb")({"n_estimators": 20, "subsample": 1.0}, seed=1)
    X, y = _xy(400)
    a.fit(X, y)
    b.fit(X, y)
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_xgb_defaults_keep_the_seed_values():
    params = get_model_type("xgb").default_params
    assert (params["n_estimators"], params["max_depth"], params["learning_rate"]) == (100, 6, 0.1)
    assert params["eval_metric"] == "logloss"
    assert "use_label_encoder" not in params
