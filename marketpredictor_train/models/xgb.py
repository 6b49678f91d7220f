"""XGBoost, the default model type, with the seed's parameters (100 trees, depth 6,
learning rate 0.1, logloss). Saved as XGBoost's own UBJSON, never pickled."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from marketpredictor_train.models.base import FoldData, ModelType, RowBatches

if TYPE_CHECKING:
    import numpy as np
    import optuna


class XGBModelType(ModelType):
    name = "xgb"
    payload_format = "xgboost-ubj"
    supports_gpu = True
    reserved_params = frozenset({"objective", "tree_method", "device", "random_state", "n_jobs"})
    isolate_loading = True
    feature_dtype = "float32"  # XGBoost bins float32 values, whatever it is given
    library_modules = ("xgboost",)
    # hist trees are the same on any thread count, subsampled or not (each booster draws
    # from its own seeded generator), so folds may be fitted side by side.
    concurrent_fits = True
    default_params: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 100,
        "max_depth": 6,
        "learning_rate": 0.1,
        "eval_metric": "logloss",
        # XGBoost's own defaults for the other tuned parameters, spelled out so a default
        # model can be replayed as a tuning trial and compared value by value.
        "min_child_weight": 1,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
    }

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str = "cpu", seed: int = 42
    ) -> None:
        super().__init__(params, device=device, seed=seed)
        self._model: Any = None

    def _build(self) -> Any:
        from xgboost import XGBClassifier

        from marketpredictor_train.models.threads import fit_threads

        return XGBClassifier(
            **self.params,
            objective="binary:logistic",
            tree_method="hist",
            device="cuda" if self.device == "cuda" else "cpu",
            random_state=self.seed,
            n_jobs=fit_threads(),
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._model = self._build()
        self._model.fit(X, y, verbose=False)

    def prepare_fit(self, rows: RowBatches) -> Any:
        """The quantised matrix XGBClassifier.fit would build from the same rows as one
        matrix, with this model's parameters (its ``max_bin`` among them), built from the
        rows a batch at a time (XGBoost reads them several times: for the quantile cuts,
        then for the bins; the cuts are those of the whole matrix)."""
        import numpy as np
        import xgboost

        classes = np.unique(rows.labels)
        if classes.shape != (2,) or not (classes == (0, 1)).all():
            # what XGBClassifier.fit refuses, refused before any matrix is built
            raise ValueError(f"Invalid classes inferred from unique values of `y`: {classes}")
        model = self._build()
        batches = _batch_iter(rows)
        try:
            return xgboost.QuantileDMatrix(
                batches, missing=model.missing, nthread=model.n_jobs, max_bin=model.max_bin
            )
        finally:
            # The iterator and its callbacks form a reference cycle: without this the rows
            # (a run's whole feature frame) would live until Python's cycle collector ran.
            batches.forget()

    def fit_prepared(self, prepared: Any) -> None:
        import xgboost

        model = self._build()
        # The parameters and rounds XGBClassifier.fit trains with, on the matrix it builds;
        # the classifier then holds the booster as it holds a loaded model.
        booster = xgboost.train(
            model.get_xgb_params(),
            prepared,
            num_boost_round=model.get_num_boosting_rounds(),
            verbose_eval=False,
        )
        model.load_model(bytearray(booster.save_raw(raw_format="ubj")))
        self._model = model

    def fit_with_validation(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        *,
        trial: optuna.Trial | None = None,
    ) -> None:
        model = self._build()
        callbacks = None
        if trial is not None:
            from optuna_integration.xgboost import XGBoostPruningCallback

            callbacks = [XGBoostPruningCallback(trial, "validation_0-logloss")]
        model.set_params(eval_metric="logloss", callbacks=callbacks)
        model.fit(X, y, eval_set=[(X_valid, y_valid)], verbose=False)
        model.set_params(callbacks=None)  # the fitted model must not keep the trial alive
        self._model = model

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
        """The fold's quantised matrices, built once per study: the training rows' bins,
        and the validation rows binned on the same cuts (what ``fit`` builds each time)."""
        import xgboost

        from marketpredictor_train.models.threads import fit_threads

        model = cls(device=device)._build()
        train = xgboost.QuantileDMatrix(X, label=y, nthread=fit_threads(), max_bin=model.max_bin)
        valid = xgboost.QuantileDMatrix(
            X_valid, label=y_valid, ref=train, nthread=fit_threads(), max_bin=model.max_bin
        )
        return FoldData(None, y, None, y_valid, prepared=(train, valid))

    def fit_fold(self, fold: FoldData, *, trial: optuna.Trial | None = None) -> np.ndarray:
        if fold.prepared is None:
            return super().fit_fold(fold, trial=trial)
        import xgboost

        train, valid = fold.prepared
        model = self._build()
        callbacks = [_follow_threads()]
        evals: list[tuple[Any, str]] = []
        if trial is not None and callable(getattr(trial, "due", None)):
            # The tuner's fold reporter says which rounds it judges: the validation log
            # loss is measured at those only (every round's costs a quarter of the fit).
            callbacks.append(_judged_rounds(trial, valid))
        elif trial is not None:
            from optuna_integration.xgboost import XGBoostPruningCallback

            callbacks.append(XGBoostPruningCallback(trial, "validation_0-logloss"))
            evals = [(valid, "validation_0")]
        # The parameters XGBClassifier.fit trains with, on the matrices it would build.
        booster = xgboost.train(
            model.get_xgb_params(),
            train,
            num_boost_round=model.get_num_boosting_rounds(),
            evals=evals,
            callbacks=callbacks,
            verbose_eval=False,
        )
        return booster.predict(valid)

    @classmethod
    def gpu_available(cls) -> bool:
        import xgboost

        return bool(xgboost.build_info().get("USE_CUDA"))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._model.predict_proba(X)[:, 1]

    def feature_importance(self) -> np.ndarray | None:
        return self._model.feature_importances_

    def to_bytes(self) -> bytes:
        return bytes(self._model.get_booster().save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(
        cls, payload: bytes, params: Mapping[str, Any] | None = None, *, device: str = "cpu"
    ) -> Self:
        from xgboost.core import XGBoostError

        from marketpredictor_train.errors import ModelFileError

        # An empty buffer aborts the whole process inside libxgboost instead of raising;
        # UBJSON (and JSON) models are objects, so anything else is refused up front.
        if not payload.startswith(b"{"):
            raise ModelFileError("Not a readable XGBoost model: not a UBJSON/JSON object")
        # libxgboost reads a buffer cut short past its end (it may even load): an object
        # that does not close is refused before the library sees it.
        if not payload.rstrip().endswith(b"}"):
            raise ModelFileError("Not a whole XGBoost model: the object does not close (truncated)")
        inst = cls(params, device=device)
        model = inst._build()
        try:
            model.load_model(bytearray(payload))
        except (XGBoostError, UnicodeDecodeError, ValueError) as exc:
            first_line = (str(exc).splitlines() or ["unknown error"])[0]
            raise ModelFileError(f"Not a readable XGBoost model: {first_line}") from exc
        # A payload cut short can still parse as a smaller model: every tree the
        # parameters name must be there (mptrain fits without early stopping).
        expected = inst.params.get("n_estimators")
        rounds = model.get_booster().num_boosted_rounds()
        if isinstance(expected, int) and rounds != expected:
            raise ModelFileError(
                f"Not a whole XGBoost model: it holds {rounds} of the {expected} trees its "
                "parameters name (truncated or altered)"
            )
        inst._model = model
        return inst

    def check_structure(self, n_features: int) -> None:
        import json

        from marketpredictor_train.errors import ModelFileError

        booster = self._model.get_booster()
        if booster.num_features() != n_features:
            raise ModelFileError(
                f"Not a consistent XGBoost model: it reads {booster.num_features()} features, "
                f"its manifest names {n_features}"
            )
        try:
            model = json.loads(bytes(booster.save_raw(raw_format="json")))
            trees = model["learner"]["gradient_booster"]["model"]["trees"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"Not a consistent XGBoost model: {exc!r}") from exc
        for number, tree in enumerate(trees):
            problem = _tree_problem(tree, n_features)
            if problem:
                raise ModelFileError(f"Not a consistent XGBoost model: tree {number} {problem}")

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "min_child_weight": trial.suggest_int("min_child_weight", 1, 10),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
        }


def _batch_iter(rows: RowBatches) -> Any:
    """An xgboost.DataIter over ``rows``: each pass reads them afresh, batch by batch, and
    XGBoost lets each batch go once it has read it; ``forget()`` drops the rows."""
    return _batches_class()(rows)


@functools.cache
def _batches_class() -> type:
    # Made once (XGBoost loads only when a model fits) and taking the rows as an argument:
    # nothing that outlives the matrix may hold them.
    import xgboost

    class Batches(xgboost.DataIter):
        def __init__(self, rows: RowBatches) -> None:
            self._rows: RowBatches | None = rows
            self._batches: Any = None
            super().__init__(release_data=True)

        def forget(self) -> None:
            self._rows = self._batches = None

        def next(self, input_data: Any) -> bool:
            if self._batches is None:
                assert self._rows is not None
                self._batches = iter(self._rows)
            batch = next(self._batches, None)
            if batch is None:
                return False
            input_data(data=batch[0], label=batch[1])
            return True

        def reset(self) -> None:
            self._batches = None

    return Batches


def _follow_threads() -> Any:
    """A training callback that sets the booster's thread count to :func:`fit_threads`
    whenever that changes between rounds (a fit beside this one ended and gave its
    threads back). The trees are the same on any thread count."""
    import xgboost

    from marketpredictor_train.models.threads import fit_threads

    class FollowThreads(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.threads = fit_threads()

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            wanted = fit_threads()
            if wanted != self.threads:
                model.set_param("nthread", wanted)
                self.threads = wanted
            return False

    return FollowThreads()


def _judged_rounds(reporter: Any, valid: Any) -> Any:
    """A training callback for a tuning fold: at each round the reporter judges
    (``reporter.due``) it measures the validation log loss, as XGBoost's evaluation would
    (the same metric, text and number), reports it and stops the fit when the reporter
    says prune; every round it tells the reporter the round was fitted."""
    import optuna
    import xgboost

    class JudgedRounds(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            reporter.reached(epoch)
            if reporter.due(epoch):
                # "[epoch]\tvalidation_0-logloss:0.6931...", read as XGBoost reads it
                text = model.eval_set([(valid, "validation_0")], epoch)
                scores = dict(item.split(":", 1) for item in text.split("\t")[1:])
                reporter.report(float(scores["validation_0-logloss"]), epoch)
            if reporter.should_prune():
                raise optuna.TrialPruned(f"Trial was pruned at iteration {epoch}.")
            return False

    return JudgedRounds()


def _tree_problem(tree: Any, n_features: int) -> str | None:
    """What is wrong with one tree of XGBoost's JSON model, or None: every array as long
    as the tree has nodes, children in range, each node reached once from the root (no
    cycle), numerical splits on existing features."""
    try:
        size = int(tree["tree_param"]["num_nodes"])
        left, right = tree["left_children"], tree["right_children"]
        feature, kinds = tree["split_indices"], tree["split_type"]
        arrays = (left, right, feature, kinds, tree["split_conditions"], tree["base_weights"])
    except (KeyError, TypeError, ValueError):
        return "lacks its node arrays"
    if size < 1 or any(not isinstance(a, list) or len(a) != size for a in arrays):
        return f"has node arrays of the wrong length (num_nodes {size})"
    seen = [False] * size
    stack = [0]
    while stack:
        node = stack.pop()
        if seen[node]:
            return f"reaches node {node} twice (a cycle)"
        seen[node] = True
        lo, hi = left[node], right[node]
        if lo == -1 and hi == -1:
            continue
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 < lo < size and 0 < hi < size):
            return f"has node {node} with children out of range ({lo}, {hi})"
        if kinds[node] != 0 or not (
            isinstance(feature[node], int) and 0 <= feature[node] < n_features
        ):
            return f"has node {node} splitting on feature {feature[node]} of {n_features}"
        stack.extend((lo, hi))
    return None
