"""The contract every model type passes, built-in or plugin, as a pytest base class.

A plugin's test suite subclasses :class:`ModelTypeContract` and supplies one fixture::

    import pytest
    from marketpredictor_train.testing.model_type_contract import ModelTypeContract
    from my_plugin import CatBoostModelType

    class TestCatBoost(ModelTypeContract):
        @pytest.fixture
        def model_type(self):
            return CatBoostModelType

Every test then runs against that class: registration under its name, fitting, P(up) in
[0, 1], determinism under a seed, a safe byte round trip that predicts the same, clear
errors for unreadable payloads, a usable search space, and pruning during tuning.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from marketpredictor_train.errors import ModelFileError

if TYPE_CHECKING:
    import optuna

    from marketpredictor_train.models.base import ModelType

_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_N_FEATURES = 6


def _signal_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label depends clearly on the first two columns: any real learner
    gets well above chance, a constant predictor does not."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, _N_FEATURES))
    logit = 2.5 * X[:, 0] - 2.0 * X[:, 1]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return X, y


class ModelTypeContract:
    """Subclass and provide the ``model_type`` fixture (the ModelType subclass)."""

    # Fraction of held-out rows a model must get right on the contract's clear signal.
    min_accuracy: float = 0.7

    @pytest.fixture
    def model_type(self) -> type[ModelType]:
        raise NotImplementedError("Provide a `model_type` fixture returning the class")

    @pytest.fixture
    def train_xy(self) -> tuple[np.ndarray, np.ndarray]:
        return _signal_data(0, 600)

    @pytest.fixture
    def test_xy(self) -> tuple[np.ndarray, np.ndarray]:
        return _signal_data(1, 400)

    @pytest.fixture
    def fitted(self, model_type: type[ModelType], train_xy: Any) -> ModelType:
        model = model_type(seed=7)
        model.fit(*train_xy)
        return model

    # --- identity and registration -------------------------------------------------

    def test_declares_a_valid_name(self, model_type: type[ModelType]) -> None:
        assert isinstance(model_type.name, str) and _NAME.fullmatch(model_type.name), (
            f"name {model_type.name!r} must be lower-case letters, digits, '-' or '_'"
        )

    def test_is_registered_under_its_name(self, model_type: type[ModelType]) -> None:
        from marketpredictor_train.models.registry import available_model_types, get_model_type

        assert model_type.name in available_model_types(), (
            f"'{model_type.name}' is not in the entry-point group "
            "marketpredictor_train.model_types of any installed package"
        )
        assert get_model_type(model_type.name) is model_type

    def test_declares_a_payload_format_that_is_not_pickle(
        self, model_type: type[ModelType]
    ) -> None:
        fmt = model_type.payload_format
        assert isinstance(fmt, str) and fmt.strip()
        assert "pickle" not in fmt.lower() and "joblib" not in fmt.lower()

    def test_supports_gpu_is_a_bool(self, model_type: type[ModelType]) -> None:
        assert isinstance(model_type.supports_gpu, bool)

    def test_default_params_survive_json(self, model_type: type[ModelType]) -> None:
        params = dict(model_type.default_params)
        assert json.loads(json.dumps(params)) == params, "the manifest stores params as JSON"

    # --- fitting and predicting ----------------------------------------------------

    def test_predict_proba_is_one_probability_per_row(
        self, fitted: ModelType, test_xy: Any
    ) -> None:
        X, _ = test_xy
        proba = np.asarray(fitted.predict_proba(X))
        assert proba.shape == (len(X),)
        assert np.all(np.isfinite(proba))
        assert proba.min() >= 0.0 and proba.max() <= 1.0

    def test_learns_a_clear_signal(self, fitted: ModelType, test_xy: Any) -> None:
        X, y = test_xy
        accuracy = float(np.mean((np.asarray(fitted.predict_proba(X)) >= 0.5) == (y == 1)))
        assert accuracy >= self.min_accuracy, f"accuracy {accuracy:.3f} on a clear signal"

    def test_same_seed_same_predictions(
        self, model_type: type[ModelType], train_xy: Any, test_xy: Any
    ) -> None:
        a, b = model_type(seed=3), model_type(seed=3)
        a.fit(*train_xy)
        b.fit(*train_xy)
        np.testing.assert_allclose(a.predict_proba(test_xy[0]), b.predict_proba(test_xy[0]))

    def test_feature_importance_is_none_or_one_per_column(self, fitted: ModelType) -> None:
        importance = fitted.feature_importance()
        if importance is None:
            return
        importance = np.asarray(importance, dtype=float)
        assert importance.shape == (_N_FEATURES,)
        assert np.all(np.isfinite(importance)) and np.all(importance >= 0)

    def test_params_are_the_defaults_under_the_given_ones(
        self, model_type: type[ModelType]
    ) -> None:
        defaults = dict(model_type.default_params)
        if not defaults:
            pytest.skip("no default parameters to override")
        key = next(iter(defaults))
        model = model_type({key: defaults[key]})
        assert model.params == defaults

    # --- saving and loading --------------------------------------------------------

    def test_bytes_round_trip_predicts_the_same(
        self, model_type: type[ModelType], fitted: ModelType, test_xy: Any
    ) -> None:
        payload = fitted.to_bytes()
        assert isinstance(payload, bytes) and payload
        loaded = model_type.from_bytes(payload, fitted.params)
        np.testing.assert_allclose(
            loaded.predict_proba(test_xy[0]), fitted.predict_proba(test_xy[0]), rtol=0, atol=1e-9
        )

    def test_a_loaded_model_passes_its_own_structure_check(
        self, model_type: type[ModelType], fitted: ModelType, train_xy: Any
    ) -> None:
        """check_structure, which guards every load of an untrusted file, accepts what
        the type itself wrote; the loading declarations have their types."""
        loaded = model_type.from_bytes(fitted.to_bytes(), fitted.params)
        loaded.check_structure(train_xy[0].shape[1])
        assert isinstance(model_type.isolate_loading, bool)
        assert isinstance(model_type.reserved_params, frozenset)
        assert not model_type.reserved_params & set(model_type.default_params)

    def test_payload_is_not_a_pickle(self, fitted: ModelType) -> None:
        payload = fitted.to_bytes()
        # Every pickle since protocol 2 starts with the PROTO opcode.
        assert not payload.startswith(b"\x80"), "payloads must never be pickles"

    @pytest.mark.parametrize(
        "payload", [b"", b"not a model", b"\x80\x04\x95 pickle-ish bytes"], ids=repr
    )
    def test_unreadable_payload_is_a_model_file_error(
        self, model_type: type[ModelType], payload: bytes
    ) -> None:
        with pytest.raises(ModelFileError):
            model_type.from_bytes(payload)

    def test_truncated_payload_is_a_model_file_error(
        self, model_type: type[ModelType], fitted: ModelType
    ) -> None:
        payload = fitted.to_bytes()
        with pytest.raises(ModelFileError):
            model_type.from_bytes(payload[: len(payload) // 3])

    # --- tuning --------------------------------------------------------------------

    def _trials(self, n: int, pruner: optuna.pruners.BasePruner | None = None) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=pruner or optuna.pruners.NopPruner(),
        )
        return study, [study.ask() for _ in range(n)]

    def test_search_space_params_build_working_models(
        self, model_type: type[ModelType], train_xy: Any, test_xy: Any
    ) -> None:
        _, trials = self._trials(3)
        for trial in trials:
            params = model_type.search_space(trial)
            assert set(params) == set(trial.params), "return exactly the suggested values"
            assert json.loads(json.dumps(params)) == params
            model = model_type({**model_type.default_params, **params}, seed=1)
            model.fit(*train_xy)
            assert np.asarray(model.predict_proba(test_xy[0])).shape == (len(test_xy[0]),)

    def test_fit_with_validation_completes_without_pruning(
        self, model_type: type[ModelType], train_xy: Any, test_xy: Any
    ) -> None:
        from marketpredictor_train.tuning.objective import FoldReporter

        _, (trial,) = self._trials(1)
        model = model_type(seed=1)
        reporter = FoldReporter(trial, 0, pruning=True)
        model.fit_with_validation(*train_xy, *test_xy, trial=reporter)  # type: ignore[arg-type]
        assert np.asarray(model.predict_proba(test_xy[0])).shape == (len(test_xy[0]),)

    def test_fit_with_validation_stops_when_the_pruner_says_so(
        self, model_type: type[ModelType], train_xy: Any, test_xy: Any
    ) -> None:
        """A model that reports rounds must stop at the pruner's word; one that does not
        report simply fits (the tuner then prunes between folds)."""
        import optuna

        from marketpredictor_train.tuning.objective import FoldReporter

        class PruneAll(optuna.pruners.BasePruner):
            def prune(self, study: Any, trial: Any) -> bool:
                return True

        _, (trial,) = self._trials(1, PruneAll())
        model = model_type(seed=1)
        reporter = FoldReporter(trial, 0, pruning=True)
        try:
            model.fit_with_validation(*train_xy, *test_xy, trial=reporter)  # type: ignore[arg-type]
        except optuna.TrialPruned:
            assert reporter.reports >= 1, "pruned without reporting anything"
            return
        assert reporter.reports == 0, (
            "the model reported rounds to the trial but did not stop when told to prune"
        )
