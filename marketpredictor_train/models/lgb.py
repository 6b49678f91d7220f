"""LightGBM as the ``lgb`` model type, saved as LightGBM's own model text (parsed, never
executed). Fits on a CUDA GPU when the installed LightGBM was built with CUDA."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Self

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.models.base import FoldData, ModelType

if TYPE_CHECKING:
    import numpy as np
    import optuna


class LightGBMModelType(ModelType):
    name = "lgb"
    payload_format = "lightgbm-text"
    supports_gpu = True
    reserved_params = frozenset(
        {"objective", "subsample_freq", "random_state", "verbosity", "device_type"}
    )
    isolate_loading = True
    library_modules = ("lightgbm",)
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,  # mild L2, as XGBoost's default: daily returns are noisy
    }

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        super().__init__(params, device=device, seed=seed)
        self._booster: Any = None

    def _build(self) -> Any:
        from lightgbm import LGBMClassifier

        from marketpredictor_train.models.threads import fit_threads

        fixed = {
            "objective": "binary",
            # LightGBM ignores `subsample` unless bagging runs every iteration.
            "subsample_freq": 1,
            "random_state": self.seed,
            "verbosity": -1,
            "device_type": "cuda" if self.device == "cuda" else "cpu",
            "n_jobs": fit_threads(),
        }
        return LGBMClassifier(**{**fixed, **self.params})

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        model = self._build()
        model.fit(X, y)
        self._booster = model.booster_

    def fit_with_validation(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        *,
        trial: optuna.Trial | None = None,
    ) -> None:
        callbacks = []
        if trial is not None:
            from optuna_integration.lightgbm import LightGBMPruningCallback

            callbacks.append(LightGBMPruningCallback(trial, "binary_logloss", "valid_0"))
        model = self._build()
        model.fit(
            X,
            y,
            eval_X=(X_valid,),
            eval_y=(y_valid,),
            eval_names=["valid_0"],
            eval_metric="binary_logloss",
            callbacks=callbacks,
        )
        self._booster = model.booster_

    @classmethod
    def prepare_fold(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        *,
        device: str = "cpu",
        seed: int = 42,
    ) -> FoldData:
        """The fold's LightGBM Datasets, built once per study: the training rows binned as
        LGBMClassifier.fit bins them (the same bin bounds: its parameters, its seed for
        the rows it samples to find them), and the validation rows on the same bins. No
        tuned parameter changes the bins once LightGBM's feature pre-filter is off (it
        drops features no split could use under ``min_child_samples``, which trials
        vary; a feature of a few distinct values at most). The validation rows' features
        stay for the fold's predictions."""
        import lightgbm

        params = _fold_params(cls(device=device, seed=seed)._build())
        train = lightgbm.Dataset(X, label=y, params=params).construct()
        valid = lightgbm.Dataset(X_valid, label=y_valid, reference=train, params=params)
        valid.construct()
        return FoldData(None, y, X_valid, y_valid, prepared=(train, valid))

    def fit_fold(self, fold: FoldData, *, trial: optuna.Trial | None = None) -> np.ndarray:
        if fold.prepared is None:
            return super().fit_fold(fold, trial=trial)
        import lightgbm

        assert fold.X_valid is not None
        train, valid = fold.prepared
        callbacks = []
        if trial is not None:
            from optuna_integration.lightgbm import LightGBMPruningCallback

            callbacks.append(LightGBMPruningCallback(trial, "binary_logloss", "valid_0"))
        model = self._build()
        # What LGBMClassifier.fit trains with, on the Datasets it would build.
        self._booster = lightgbm.train(
            _fold_params(model),
            train,
            num_boost_round=model.n_estimators,
            valid_sets=[valid],
            valid_names=["valid_0"],
            callbacks=callbacks,
        )
        return self.predict_proba(fold.X_valid)

    @classmethod
    def gpu_available(cls) -> bool:
        return _cuda_build()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._booster.predict(X)

    def feature_importance(self) -> np.ndarray | None:
        gain = self._booster.feature_importance(importance_type="gain").astype(float)
        total = gain.sum()
        return gain / total if total > 0 else gain

    def to_bytes(self) -> bytes:
        return self._booster.model_to_string().encode("utf-8")

    @classmethod
    def from_bytes(
        cls, payload: bytes, params: Mapping[str, Any] | None = None, *, device: str = "cpu"
    ) -> Self:
        import lightgbm

        payload = bytes(payload)
        # LightGBM's parser aborts the process on a truncated model instead of raising, so
        # a model text must be whole (both section ends present) before it is handed over.
        if not (
            payload.startswith(b"tree\n")
            and b"\nend of trees\n" in payload
            and b"\nend of parameters\n" in payload
        ):
            raise ModelFileError("Not a readable LightGBM model text: incomplete or not a model")
        _check_parameters(payload)
        try:
            booster = lightgbm.Booster(model_str=payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise ModelFileError(f"Not a readable LightGBM model text: {exc}") from exc
        inst = cls(params, device=device)
        inst._booster = booster
        return inst

    def check_structure(self, n_features: int) -> None:
        if self._booster.num_feature() != n_features:
            raise ModelFileError(
                f"Not a consistent LightGBM model: it reads {self._booster.num_feature()} "
                f"features, its manifest names {n_features}"
            )
        # The dump walks every tree from its root in LightGBM itself, so a broken tree
        # fails here (in the child process that probes untrusted payloads).
        for info in self._booster.dump_model().get("tree_info", []):
            leaves = _count_leaves(info.get("tree_structure"), n_features)
            if leaves != info.get("num_leaves"):
                raise ModelFileError(
                    f"Not a consistent LightGBM model: tree {info.get('tree_index')} has "
                    f"{leaves} reachable leaves, not {info.get('num_leaves')}"
                )

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 400),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }


def _fold_params(model: Any) -> dict[str, Any]:
    """What a tuning fold's Datasets are built with and its fits train with:
    :func:`_train_params`, and LightGBM's feature pre-filter off (LightGBM refuses to
    train on a built Dataset with a smaller min_data_in_leaf, min_child_samples, than it
    was built with while the pre-filter is on)."""
    return {**_train_params(model), "feature_pre_filter": False}


def _train_params(model: Any) -> dict[str, Any]:
    """The parameters LGBMClassifier ``model`` hands lightgbm.train in a binary fit
    watched on one validation set with ``eval_metric="binary_logloss"``: its own, less
    what the wrapper keeps for itself, with LightGBM's names for the objective, metric
    and threads."""
    params = model.get_params()
    for name in ("n_estimators", "importance_type", "class_weight", "n_jobs"):
        params.pop(name, None)
    params["objective"] = "binary"
    params["metric"] = ["binary_logloss"]
    params["num_threads"] = model.n_jobs
    return params


def _count_leaves(node: Any, n_features: int) -> int:
    """Leaves under ``node`` of a dumped tree, every split checked to be a numerical one on
    an existing feature."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict):
            raise ModelFileError("Not a consistent LightGBM model: a tree node is not a node")
        if "leaf_value" in current and "split_feature" not in current:
            count += 1
            continue
        feature = current.get("split_feature")
        if not isinstance(feature, int) or not 0 <= feature < n_features:
            raise ModelFileError(
                f"Not a consistent LightGBM model: a split on feature {feature} of {n_features}"
            )
        if current.get("decision_type") != "<=":
            raise ModelFileError("Not a consistent LightGBM model: a non-numerical split")
        stack.extend((current.get("left_child"), current.get("right_child")))
    return count


@cache
def _cuda_build() -> bool:
    """Whether this LightGBM was built with CUDA: the only sure test is a tiny fit."""
    import lightgbm
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.random((64, 2))
    y = (X[:, 0] > 0.5).astype(int)
    try:
        lightgbm.train(
            {"objective": "binary", "device_type": "cuda", "verbosity": -1},
            lightgbm.Dataset(X, y),
            num_boost_round=1,
        )
    except lightgbm.basic.LightGBMError:
        return False
    return True


# One line of a model text's parameters section, as LightGBM writes it: a name, ": " and
# a value of printable ASCII other than brackets.
_PARAMETER_LINE = re.compile(rb"\[[A-Za-z0-9_]+: [\x20-\x5a\x5c\x5e-\x7e]*\]\Z")


def _check_parameters(payload: bytes) -> None:
    """Every line of the parameters section must read ``[name: value]``. LightGBM reads
    the section again when the Python package asks for the loaded parameters, and a line
    without its ": " made that read run past the text: a crash of this process or not,
    depending on what memory lay behind it."""
    start = payload.rfind(b"\nparameters:\n")
    end = payload.find(b"\nend of parameters\n", max(start, 0))
    if start < 0 or end < 0:
        raise ModelFileError("Not a readable LightGBM model text: no parameters section")
    lines = payload[start + len(b"\nparameters:\n") : end].split(b"\n")
    bad = next((line for line in lines if line and not _PARAMETER_LINE.match(line)), None)
    if bad is not None:
        raise ModelFileError(
            f"Not a readable LightGBM model text: a malformed parameter line {bad[:60]!r}"
        )
