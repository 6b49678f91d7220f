"""A logistic-regression model type for mptrain, registered through the
``marketpredictor_train.model_types`` entry point. Saved as plain JSON numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.models.base import ModelType


class LogisticModelType(ModelType):
    name = "logit"
    payload_format = "json-logit-v1"
    supports_gpu = False
    default_params: Mapping[str, Any] = {"C": 1.0}

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        super().__init__(params, device=device, seed=seed)
        self._state: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=float(self.params["C"]), random_state=self.seed)
        model.fit((X - mean) / scale, y)
        self._state = {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(),
            "intercept": [float(model.intercept_[0])],
        }

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        s = self._state
        z = ((X - np.array(s["mean"])) / np.array(s["scale"])) @ np.array(s["coef"])
        return 1.0 / (1.0 + np.exp(-(z + s["intercept"][0])))

    def feature_importance(self) -> np.ndarray | None:
        return np.abs(np.array(self._state["coef"]))

    def to_bytes(self) -> bytes:
        return json.dumps(self._state).encode("utf-8")

    @classmethod
    def from_bytes(
        cls, payload: bytes, params: Mapping[str, Any] | None = None, *, device: str = "cpu"
    ) -> Self:
        try:
            state = json.loads(bytes(payload).decode("utf-8"))
            sizes = {len(state[k]) for k in ("mean", "scale", "coef")}
            if len(sizes) != 1 or len(state["intercept"]) != 1:
                raise ValueError("inconsistent sizes")
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"Not a logit model: {exc}") from exc
        inst = cls(params, device=device)
        inst._state = state
        return inst

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}
