"""The tuning objective: mean validation log loss over the purged walk-forward folds, with
pruning inside each fold (the model library's pruning callback, round by round) and
between folds (each fold's final log loss)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketpredictor_train.tuning.study import worker_id

if TYPE_CHECKING:
    import numpy as np
    import optuna

    from marketpredictor_train.models.base import FoldData, ModelType
    from marketpredictor_train.tuning.cv import Fold

# Steps of fold k are k * STEP_STRIDE + round, so the pruner only ever compares a round
# of one fold with the same round of the same fold in other trials. The fold's final log
# loss is reported at the fold's last step, which every trial reaches.
STEP_STRIDE = 1_000_000
# Every learning rate starts from the same log loss; judging the first rounds would cut
# slow learners before they had a chance.
WARMUP_ROUNDS = 20
# Each report is a write to the study storage (a network round trip on PostgreSQL);
# every tenth round is plenty for a decision, and each costs a few milliseconds.
REPORT_EVERY = 10

_EPS = 1e-15


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean binary cross-entropy of P(up) against 0/1 labels."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), _EPS, 1 - _EPS)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


class FoldReporter:
    """What a model's pruning callback sees as "the trial" during one fold: it shifts the
    callback's round numbers into the fold's own steps, skips the warm-up rounds, reports
    every REPORT_EVERY-th round only, and counts the rounds actually fitted."""

    def __init__(self, trial: optuna.Trial, fold: int, *, pruning: bool) -> None:
        self._trial = trial
        self._offset = fold * STEP_STRIDE
        self._pruning = pruning
        self._due = False
        self.rounds = 0  # rounds the model fitted in this fold
        self.reports = 0  # of which were passed on to the trial

    @property
    def study(self) -> optuna.Study:
        return self._trial.study

    def report(self, value: float, step: int) -> None:
        self.rounds = max(self.rounds, step + 1)
        self._due = (
            self._pruning
            and step + 1 >= WARMUP_ROUNDS
            and (step + 1) % REPORT_EVERY == 0
            and step < STEP_STRIDE - 1
        )
        if self._due:
            self.reports += 1
            self._trial.report(float(value), self._offset + step)

    def should_prune(self) -> bool:
        return self._due and self._trial.should_prune()


@dataclass(frozen=True)
class TuningData:
    """The training part as arrays, and its folds; built once, used by every trial."""

    X: np.ndarray
    y: np.ndarray
    folds: list[Fold]


class Objective:
    """Callable for ``study.optimize``: builds the trial's parameters from the model
    type's search space over its defaults and scores them on every fold."""

    def __init__(
        self,
        model_cls: type[ModelType],
        data: TuningData,
        *,
        device: str,
        seed: int,
        pruning: bool,
        reuse_folds: bool = True,
    ) -> None:
        from marketpredictor_train.models.base import ModelType

        self.model_cls = model_cls
        self.data = data
        self.device = device
        self.seed = seed
        self.pruning = pruning
        self.worker = worker_id()
        # A model type with its own prepare_fold builds each fold's training structures
        # once per study; the others get fresh row copies per fit (keeping those for
        # every fold would hold about twice the training matrix).
        own = any("prepare_fold" in vars(k) for k in model_cls.__mro__ if k is not ModelType)
        self.reuse_folds = reuse_folds and own
        self._folds: dict[int, FoldData] = {}

    def fold_data(self, fold: Fold) -> FoldData:
        """The fold's data for a fit: built once and kept when the model type prepares
        its own, else the row copies for this fit only."""
        from marketpredictor_train.models.base import FoldData

        kept = self._folds.get(fold.index)
        if kept is not None:
            return kept
        X, y = self.data.X, self.data.y
        tr, va = fold.train_rows, fold.valid_rows
        if not self.reuse_folds:
            return FoldData(X[tr], y[tr], X[va], y[va])
        data = self.model_cls.prepare_fold(X[tr], y[tr], X[va], y[va], device=self.device)
        self._folds[fold.index] = data
        return data

    def params_for(self, trial: optuna.Trial) -> dict[str, Any]:
        return {**self.model_cls.default_params, **self.model_cls.search_space(trial)}

    def __call__(self, trial: optuna.Trial) -> float:
        import numpy as np
        import optuna

        params = self.params_for(trial)
        trial.set_user_attr("worker", self.worker)
        losses: list[float] = []
        accuracies: list[float] = []
        fits = rounds = 0
        try:
            for fold in self.data.folds:
                data = self.fold_data(fold)
                model = self.model_cls(params, device=self.device, seed=self.seed)
                reporter = FoldReporter(trial, fold.index, pruning=self.pruning)
                fits += 1
                try:
                    proba = model.fit_fold(data, trial=reporter)  # type: ignore[arg-type]
                finally:
                    rounds += reporter.rounds
                loss = log_loss(data.y_valid, proba)
                losses.append(loss)
                accuracies.append(float(np.mean((proba >= 0.5) == (data.y_valid == 1))))
                if self.pruning and fold.index < len(self.data.folds) - 1:
                    trial.report(loss, (fold.index + 1) * STEP_STRIDE - 1)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"Pruned after fold {fold.index}")
        finally:
            trial.set_user_attr("fits", fits)
            trial.set_user_attr("boosting_rounds", rounds)
            trial.set_user_attr("fold_log_loss", [round(v, 6) for v in losses])
        trial.set_user_attr("cv_accuracy", float(np.mean(accuracies)))
        return float(np.mean(losses))
