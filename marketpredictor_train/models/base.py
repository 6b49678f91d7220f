"""The contract of a model type: build, fit, predict P(up), explain, save and load safely."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

if TYPE_CHECKING:
    import numpy as np
    import optuna


@dataclass(frozen=True)
class FoldData:
    """One tuning fold's rows as a model type fits on them: the arrays, and whatever the
    model type built from them once per study (``prepared``, e.g. XGBoost's quantised
    matrices), which every trial then reuses."""

    X: np.ndarray | None
    y: np.ndarray
    X_valid: np.ndarray | None
    y_valid: np.ndarray
    prepared: Any = None


class RowBatches(Protocol):
    """Training rows as :meth:`ModelType.prepare_fit` reads them: every label at once, and
    the features a batch of rows at a time (C order, the type's ``feature_dtype``), in
    row order, as often as the library wants to read them. A run reads them straight from
    its feature table, so no matrix of every row is ever built."""

    @property
    def labels(self) -> np.ndarray:
        """Every row's label (0/1), in row order."""
        ...

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(features, labels) of one batch of rows after another."""
        ...


@dataclass(frozen=True)
class ArrayBatches:
    """:class:`RowBatches` of arrays already in memory, ``size`` rows a batch."""

    X: np.ndarray
    y: np.ndarray
    size: int = 1 << 15

    @property
    def labels(self) -> np.ndarray:
        return self.y

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.y), self.size):
            yield self.X[start : start + self.size], self.y[start : start + self.size]


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
    # Arguments the type sets itself (objective, seed, device...): a manifest whose
    # ``params`` name one is refused rather than silently changing what the model is.
    reserved_params: ClassVar[frozenset[str]] = frozenset()
    # Whether the library's payload parser may crash the process on a crafted payload, so
    # that an unverified payload is first read in a child process (models/isolation.py).
    isolate_loading: ClassVar[bool] = False
    # The float type the features are handed over in. "float32" only where the library
    # works in float32 anyway (XGBoost, scikit-learn's trees), so the model is the same
    # and the training matrix takes half the memory.
    feature_dtype: ClassVar[str] = "float64"
    # The modules the type's fit imports (seconds for a model library): a run imports them
    # in the background while it loads data and builds features.
    library_modules: ClassVar[tuple[str, ...]] = ()
    # Whether fits of this type may run at the same time, each on part of the threads
    # (the folds of a tuning trial, tuning/objective.py): only where fits from several
    # threads at once give, value for value, what one at a time on every thread gives.
    concurrent_fits: ClassVar[bool] = False

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}
        self.device = device
        self.seed = seed

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on features ``X`` (n_rows x n_features, float) and labels ``y`` (0/1)."""

    def fit_with_validation(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        *,
        trial: optuna.Trial | None = None,
    ) -> None:
        """Fit on (``X``, ``y``) for one tuning fold, watching the log loss on the fold's
        validation rows.

        A model type that trains in rounds reports that log loss to ``trial`` after each
        round and raises ``optuna.TrialPruned`` when ``trial.should_prune()`` says so (the
        optuna-integration pruning callbacks do exactly this). ``trial`` only needs
        Optuna's ``report``, ``should_prune`` and ``study``. The default is a plain fit:
        the tuner then prunes between folds only."""
        self.fit(X, y)

    def prepare_fit(self, rows: RowBatches) -> Any:
        """The model library's own training structure of ``rows``, built with this model's
        parameters, for a type that has one (XGBoost's quantised matrix): a run builds it
        from its feature table a batch of rows at a time and fits with
        :meth:`fit_prepared`, so no float matrix of the training rows exists at any time.
        None (the default): the run builds the matrix and the type fits on it, with
        :meth:`fit`."""
        return None

    def fit_prepared(self, prepared: Any) -> None:
        """Fit on what :meth:`prepare_fit` returned: the very model ``fit(X, y)`` makes on
        the same rows as one matrix."""
        raise NotImplementedError(f"{self.name} has no prepare_fit")

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
        """A tuning fold's data. The tuner keeps what this returns for the whole study
        when the model type overrides it (build the library's own training structures
        here, once, with the study's ``seed`` where building them draws rows); the
        default hands the arrays over and keeps nothing."""
        return FoldData(X, y, X_valid, y_valid)

    def fit_fold(self, fold: FoldData, *, trial: optuna.Trial | None = None) -> np.ndarray:
        """Fit on a fold (as :meth:`fit_with_validation`) and return P(up) on its
        validation rows."""
        assert fold.X is not None and fold.X_valid is not None
        self.fit_with_validation(fold.X, fold.y, fold.X_valid, fold.y_valid, trial=trial)
        return self.predict_proba(fold.X_valid)

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
        """Load a model written by ``to_bytes``; must not execute code from the payload,
        and raises ``ModelFileError`` for a payload it cannot read."""

    def check_structure(self, n_features: int) -> None:
        """Raise ``ModelFileError`` unless the loaded model is internally consistent and
        reads exactly ``n_features`` columns (every tree's nodes in range, no cycles), so
        that predicting cannot read outside its arrays. The default checks nothing."""
        return None

    @classmethod
    def gpu_available(cls) -> bool:
        """Whether the installed model library can fit on the GPU that is present; asked
        only for types with ``supports_gpu`` on a machine where a GPU is visible."""
        return cls.supports_gpu

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        """Hyperparameters for one Optuna trial (empty: nothing to tune)."""
        return {}
