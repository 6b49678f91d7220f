"""Fit threads (models.threads): the cores this process may use, a cgroup quota, the data
size cap, --threads / MPTRAIN_THREADS, the passive OpenMP wait, and that the thread count
of a fit does not change the fitted model."""

from __future__ import annotations

import numpy as np
import pytest

from marketpredictor_train.config import load_settings
from marketpredictor_train.errors import ConfigError
from marketpredictor_train.models import threads
from marketpredictor_train.models.threads import (
    ROWS_PER_THREAD,
    cgroup_cpu_quota,
    choose_threads,
    fit_threads,
    using_threads,
)


def test_requested_threads_win_over_cores_and_data_size(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    assert choose_threads(3, n_rows=10) == 3


def test_auto_threads_are_the_available_cores_capped_by_the_training_rows(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    assert choose_threads(None) == 8
    assert choose_threads(None, n_rows=10) == 1  # the bundled sample: one thread
    assert choose_threads(None, n_rows=3 * ROWS_PER_THREAD + 1) == 3
    assert choose_threads(None, n_rows=100 * ROWS_PER_THREAD) == 8


def test_the_cgroup_v2_quota_is_read_in_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_quota(cpu_max, tmp_path / "no", tmp_path / "no") == 1.5
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_quota(cpu_max, tmp_path / "no", tmp_path / "no") is None


def test_the_cgroup_v1_quota_is_read_and_minus_one_means_unlimited(tmp_path):
    quota, period = tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us"
    quota.write_text("200000\n")
    period.write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "none", quota, period) == 2.0
    quota.write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "none", quota, period) is None


def test_a_quota_below_the_affinity_caps_the_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 1.5)
    assert threads.available_cpus() == 1
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert threads.available_cpus() == 4


def test_fits_inside_using_threads_get_that_count_and_the_default_comes_back(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 5)
    assert fit_threads() == 5
    with using_threads(2):
        assert fit_threads() == 2
    assert fit_threads() == 5


@pytest.mark.parametrize("name", ["xgb", "lgb", "rf"])
def test_each_built_in_model_type_fits_with_the_chosen_threads(name):
    from marketpredictor_train.models.registry import get_model_type

    with using_threads(1):
        estimator = get_model_type(name)()._build()
    assert estimator.get_params()["n_jobs"] == 1


def test_the_passive_wait_policy_is_set_only_when_the_user_set_none(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.passive_openmp()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.passive_openmp()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_threads_setting_from_flag_env_and_auto(monkeypatch):
    assert load_settings().threads is None
    monkeypatch.setenv("MPTRAIN_THREADS", "3")
    assert load_settings().threads == 3
    assert load_settings(threads=1).threads == 1
    monkeypatch.setenv("MPTRAIN_THREADS", "auto")
    assert load_settings().threads is None
    monkeypatch.setenv("MPTRAIN_THREADS", "0")
    with pytest.raises(ConfigError, match="threads"):
        load_settings()


def test_an_xgb_model_is_the_same_with_one_or_two_threads_and_in_float32():
    """Neither the thread count nor float32 features (XGBoost bins float32 values anyway)
    change the fitted model."""
    from marketpredictor_train.models.xgb import XGBModelType

    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 6))
    y = (X[:, 0] + rng.standard_normal(3000) > 0).astype(int)
    params = {"n_estimators": 20, "subsample": 0.8, "colsample_bytree": 0.8}
    payloads = set()
    for n, x in ((1, X), (2, X), (2, X.astype(np.float32))):
        model = XGBModelType(params, seed=3)
        with using_threads(n):
            model.fit(x, y)
        payloads.add(model.to_bytes())
    assert len(payloads) == 1
