"""The contract of a model type: build, fit, predict P(up), explain, save and load safely."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    import numpy as np
    import optuna


class ModelType(ABC):
    """One kind of classifier mptrain can train.

    Subclasses set ``name`` (what ``--model-type`` takes), ``default_params`` and
    ``payload_format`` (how ``to_bytes`` encodes the model; never pickle), and are
    registered through the ``marketpredictor_train.model_types`` entry-point group.
    """

    name: ClassVar[str]
    default_params: ClassVar[Mapping[str, Any]] = {}
    payload_format: ClassVar[str]
    supports_gpu: ClassVar[bool] = False

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}
        self.device = device
        self.seed = seed

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on features ``X`` (n_rows x n_features, float) and labels ``y`` (0/1)."""

    @abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability that each row's label is 1 (up), as a 1-D float array."""

    def feature_importance(self) -> np.ndarray | None:
        """Importance per feature column, or None when the model type has none."""
        return None

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The fitted model, encoded in ``payload_format``."""

    @classmethod
    @abstractmethod
    def from_bytes(
        cls, payload: bytes, params: Mapping[str, Any] | None = None, *, device: str = "cpu"
    ) -> Self:
        """Load a model written by ``to_bytes``; must not execute code from the payload."""

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        """Hyperparameters for one Optuna trial (empty: nothing to tune)."""
        return {}
