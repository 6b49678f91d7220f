"""scikit-learn's random forest as the ``rf`` model type, saved with skops: loading checks
every type in the file against an explicit trusted list and never unpickles."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.models.base import ModelType

if TYPE_CHECKING:
    import numpy as np
    import optuna

# Beyond what skops trusts by default (scikit-learn estimators, numpy arrays, builtins), a
# fitted forest holds its trees' arrays in this Cython type. Anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)


class RandomForestModelType(ModelType):
    name = "rf"
    payload_format = "skops"
    supports_gpu = False
    # Shallow trees with large leaves, each on half the rows and a third of the features:
    # daily direction is mostly noise, and a fully grown forest (scikit-learn's default)
    # memorises it. Half-size bootstrap samples also halve the fitting time.
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 8,
        "min_samples_leaf": 20,
        "max_features": 0.3,
        "max_samples": 0.5,
    }

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        super().__init__(params, device=device, seed=seed)
        self._model: Any = None

    def _build(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        from marketpredictor_train.models.threads import fit_threads

        return RandomForestClassifier(
            **{"random_state": self.seed, "n_jobs": fit_threads(), **self.params}
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._model = self._build()
        self._model.fit(X, y)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        proba = self._model.predict_proba(X)
        classes = list(self._model.classes_)
        if 1 not in classes:  # trained on one class only: P(up) is 0 everywhere
            import numpy as np

            return np.zeros(len(X), dtype=float)
        return proba[:, classes.index(1)]

    def feature_importance(self) -> np.ndarray | None:
        return self._model.feature_importances_

    def to_bytes(self) -> bytes:
        import skops.io

        return skops.io.dumps(self._model, compression=zipfile.ZIP_DEFLATED)

    @classmethod
    def from_bytes(
        cls, payload: bytes, params: Mapping[str, Any] | None = None, *, device: str = "cpu"
    ) -> Self:
        import skops.io
        from sklearn.ensemble import RandomForestClassifier

        try:
            model = skops.io.loads(bytes(payload), trusted=list(TRUSTED_TYPES))
        except Exception as exc:  # skops raises many kinds; all mean "not a safe rf file"
            raise ModelFileError(f"Not a readable random forest (skops) payload: {exc}") from exc
        if not isinstance(model, RandomForestClassifier):
            raise ModelFileError(
                f"The skops payload holds a {type(model).__name__}, not a RandomForestClassifier"
            )
        inst = cls(params, device=device)
        inst._model = model
        return inst

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
            "max_depth": trial.suggest_int("max_depth", 3, 12),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 0.8),
            "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
        }
