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
# The type's C code trusts its arguments and node arrays (which is why skops does not trust
# it by default), so both are checked: the arguments in the file before skops builds a
# tree (_check_tree_arguments), the node arrays before anything predicts (check_structure).
TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)
_MAX_FEATURES = 100_000
_MAX_CLASSES = 64
_MAX_SCHEMA_BYTES = 256 * 1024 * 1024


class RandomForestModelType(ModelType):
    name = "rf"
    payload_format = "skops"
    supports_gpu = False
    reserved_params = frozenset({"random_state"})
    library_modules = ("sklearn.ensemble",)
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
            _check_tree_arguments(bytes(payload))
            model = skops.io.loads(bytes(payload), trusted=list(TRUSTED_TYPES))
        except ModelFileError:
            raise
        except Exception as exc:  # skops raises many kinds; all mean "not a safe rf file"
            raise ModelFileError(f"Not a readable random forest (skops) payload: {exc}") from exc
        if not isinstance(model, RandomForestClassifier):
            raise ModelFileError(
                f"The skops payload holds a {type(model).__name__}, not a RandomForestClassifier"
            )
        unknown = sorted(set(params or {}) - set(RandomForestClassifier().get_params()))
        if unknown:
            raise ModelFileError(
                f"Its params name arguments a random forest does not take: {', '.join(unknown)}"
            )
        inst = cls(params, device=device)
        inst._model = model
        return inst

    def check_structure(self, n_features: int) -> None:
        """Every tree of the forest: nodes whose children come after them and inside the
        tree (so no cycle and no read outside its arrays), each node the child of one
        parent, leaves with no children, splits on existing features, one output of the
        forest's classes."""
        import numpy as np

        model = self._model
        classes = getattr(model, "classes_", None)
        trees = getattr(model, "estimators_", None)
        if (
            getattr(model, "n_features_in_", None) != n_features
            or getattr(model, "n_outputs_", None) != 1
            or classes is None
            or not isinstance(trees, list)
            or not trees
        ):
            raise ModelFileError(
                f"Not a consistent random forest: it is not a fitted one-output forest over "
                f"the manifest's {n_features} features"
            )
        for number, estimator in enumerate(trees):
            tree = getattr(estimator, "tree_", None)
            problem = (
                "has no tree" if tree is None else _tree_problem(tree, n_features, len(classes), np)
            )
            if problem:
                raise ModelFileError(f"Not a consistent random forest: tree {number} {problem}")

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
            "max_depth": trial.suggest_int("max_depth", 3, 12),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 0.8),
            "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
        }


def _tree_problem(tree: Any, n_features: int, n_classes: int, np: Any) -> str | None:
    size = int(tree.node_count)
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if tree.n_features != n_features or tree.n_outputs != 1 or size < 1:
        return f"has {tree.n_features} features and {tree.n_outputs} outputs"
    if tree.value.shape != (size, 1, n_classes) or list(tree.n_classes) != [n_classes]:
        return f"has values of shape {tree.value.shape} for {n_classes} classes"
    if not (len(left) == len(right) == len(feature) == size):
        return "has node arrays of different lengths"
    index = np.arange(size)
    leaf = left == -1
    if np.any(right[leaf] != -1):
        return "has a node with one child"
    inner = ~leaf
    if np.any((left[inner] <= index[inner]) | (left[inner] >= size)) or np.any(
        (right[inner] <= index[inner]) | (right[inner] >= size)
    ):
        return "has children out of range or before their parent (a cycle)"
    children = np.concatenate((left[inner], right[inner]))
    if np.unique(children).size != children.size or (size > 1 and children.size != size - 1):
        return "has a node with several parents, or nodes no parent reaches"
    if np.any((feature[inner] < 0) | (feature[inner] >= n_features)):
        return f"splits on a feature outside the {n_features} it reads"
    return None


def _check_tree_arguments(payload: bytes) -> None:
    """The arguments each tree is built with (n_features, n_classes, n_outputs), read from
    the skops file before skops builds anything: scikit-learn's C code indexes n_classes
    n_outputs times without bounds checks."""
    import io
    import json

    import numpy as np

    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        info = archive.getinfo("schema.json")
        if info.file_size > _MAX_SCHEMA_BYTES:
            raise ModelFileError("Not a readable random forest: its skops schema is too large")
        schema = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(f"Not a readable random forest (skops) payload: {exc}") from exc
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("__class__") == "Tree":
            _check_one_tree(node, archive, np)
        stack.extend(node.values())


def _check_one_tree(node: dict[str, Any], archive: zipfile.ZipFile, np: Any) -> None:
    bad = ModelFileError("Not a readable random forest: a tree has malformed arguments")
    try:
        args = node["__reduce__"]["args"]["content"]
        n_features = int(args[0]["content"])
        n_outputs = int(args[2]["content"])
        with archive.open(args[1]["file"]) as handle:
            n_classes = np.load(handle, allow_pickle=False)
    except (KeyError, IndexError, TypeError, ValueError, OSError) as exc:
        raise bad from exc
    if (
        len(args) != 3
        or not 0 < n_features <= _MAX_FEATURES
        or n_outputs != 1
        or n_classes.dtype.kind not in "iu"
        or n_classes.shape != (1,)
        or not 0 < int(n_classes[0]) <= _MAX_CLASSES
    ):
        raise bad
