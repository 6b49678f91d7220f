"""The tuning objective: mean validation log loss over the purged walk-forward folds, with
pruning inside each fold (the model library's pruning callback, round by round) and
between folds (each fold's final log loss)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    every REPORT_EVERY-th round only, and counts the rounds actually fitted.

    With ``judge`` (a fold fitted beside others, see :class:`_Concurrent`) the reports are
    kept here instead of going to the trial, each is judged at its own step by ``judge``,
    and ``cancelled`` stops the fold at its next round (an earlier fold was pruned)."""

    def __init__(
        self,
        trial: optuna.Trial,
        fold: int,
        *,
        pruning: bool,
        judge: Callable[[int, float], bool] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self._trial = trial
        self._offset = fold * STEP_STRIDE
        self._pruning = pruning
        self._judge = judge
        self._cancelled = cancelled
        self._due = False
        self.rounds = 0  # rounds the model fitted in this fold
        self.reports = 0  # of which were passed on to the trial
        self.kept: list[tuple[int, float]] = []  # (step, value) held back, with judge
        self.pruned = False  # judge said prune at the last kept step

    @property
    def study(self) -> optuna.Study:
        return self._trial.study

    def due(self, step: int) -> bool:
        """Whether the value of round ``step`` would be reported (and judged): a model
        type that measures its validation loss itself does so at these rounds only."""
        return (
            self._pruning
            and step + 1 >= WARMUP_ROUNDS
            and (step + 1) % REPORT_EVERY == 0
            and step < STEP_STRIDE - 1
        )

    def reached(self, step: int) -> None:
        """Round ``step`` was fitted (with no value to report)."""
        self.rounds = max(self.rounds, step + 1)
        self._due = False

    def report(self, value: float, step: int) -> None:
        self.rounds = max(self.rounds, step + 1)
        self._due = self.due(step)
        if not self._due:
            return
        self.reports += 1
        if self._judge is None:
            self._trial.report(float(value), self._offset + step)
            return
        self.kept.append((self._offset + step, float(value)))
        self.pruned = self._judge(self._offset + step, float(value))

    def should_prune(self) -> bool:
        if self._cancelled is not None and self._cancelled():
            return True
        if self._judge is not None:
            return self._due and self.pruned
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
        concurrent: bool = True,
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
        # Folds fitted at the same time, each on its share of the threads: a model type
        # whose results do not depend on its thread count, on the CPU, on matrices built
        # once (see lanes()).
        self.concurrent = (
            concurrent and self.reuse_folds and device == "cpu" and model_cls.concurrent_fits
        )
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
        data = self.model_cls.prepare_fold(
            X[tr], y[tr], X[va], y[va], device=self.device, seed=self.seed
        )
        self._folds[fold.index] = data
        return data

    def params_for(self, trial: optuna.Trial) -> dict[str, Any]:
        return {**self.model_cls.default_params, **self.model_cls.search_space(trial)}

    def lanes(self, trial: optuna.Trial) -> int:
        """How many folds of this trial are fitted at the same time.

        Boosting rounds do not scale with threads (100 XGBoost rounds on 351k rows: 3.3 s
        on one thread, 2.1 s on two), so two folds on one thread each finish sooner than
        one after the other on two. Judging each fold at its own step, as one after the
        other would be, needs a pruner that can (``judge``); with another, one by one."""
        from marketpredictor_train.models.threads import fit_threads

        if not self.concurrent or len(self.data.folds) < 2:
            return 1
        if self.pruning and not callable(getattr(trial.study.pruner, "judge", None)):
            return 1
        return max(1, min(len(self.data.folds), fit_threads()))

    def __call__(self, trial: optuna.Trial) -> float:
        import numpy as np

        params = self.params_for(trial)
        trial.set_user_attr("worker", self.worker)
        lanes = self.lanes(trial)
        runs: list[_Run] = []  # filled as the folds are fitted, failed or not
        try:
            if lanes > 1:
                _Concurrent(self, trial, params, lanes, runs).run()
            else:
                self._one_by_one(trial, params, runs)
        finally:
            losses = [r.loss for r in runs if r.loss is not None]
            trial.set_user_attr("fits", sum(r.fitted for r in runs))
            trial.set_user_attr("boosting_rounds", sum(r.rounds for r in runs))
            trial.set_user_attr("fold_log_loss", [round(v, 6) for v in losses])
        pruned = next((r.pruned for r in runs if r.pruned is not None), None)
        if pruned is not None:
            raise pruned
        trial.set_user_attr("cv_accuracy", float(np.mean([r.accuracy for r in runs])))
        return float(np.mean(losses))

    def fit_one(self, run: _Run, data: FoldData, params: dict[str, Any], reporter: Any) -> None:
        """Fit one fold into ``run``: its rounds, loss and accuracy, or the TrialPruned its
        callback raised."""
        import numpy as np
        import optuna

        model = self.model_cls(params, device=self.device, seed=self.seed)
        try:
            proba = model.fit_fold(data, trial=reporter)
        except optuna.TrialPruned as exc:
            run.pruned = exc
            return
        finally:
            run.rounds = reporter.rounds
        run.loss = log_loss(data.y_valid, proba)
        run.accuracy = float(np.mean((proba >= 0.5) == (data.y_valid == 1)))

    def _one_by_one(self, trial: optuna.Trial, params: dict[str, Any], runs: list[_Run]) -> None:
        import optuna

        for fold in self.data.folds:
            reporter = FoldReporter(trial, fold.index, pruning=self.pruning)
            run = _Run(fold.index, fitted=1)
            runs.append(run)
            self.fit_one(run, self.fold_data(fold), params, reporter)
            if run.pruned is not None:  # inside the fold: it has no loss
                break
            if self.pruning and fold.index < len(self.data.folds) - 1:
                assert run.loss is not None
                trial.report(run.loss, (fold.index + 1) * STEP_STRIDE - 1)
                if trial.should_prune():
                    run.pruned = optuna.TrialPruned(f"Pruned after fold {fold.index}")
                    break


@dataclass
class _Run:
    """One fold's fit within a trial."""

    fold: int
    fitted: int = 0  # 1 once the fit started
    rounds: int = 0
    loss: float | None = None
    accuracy: float = 0.0
    pruned: BaseException | None = None  # the TrialPruned that ended the fold
    kept: list[tuple[int, float]] = field(default_factory=list)  # held-back reports


class _Concurrent:
    """The folds of one trial fitted ``lanes`` at a time, each lane on its share of the
    threads (on 2 cores, 500 tickers x 10 years: 1.19x the trials per minute of one fold
    after the other on both), with the outcome the folds would have one after the other:
    the same pruning decisions (each fold judged at its own steps against the same
    completed trials), the same reports in the trial, the same value.

    Lanes get the folds by their size (largest first to the least loaded lane, so the
    lanes end together) and fit them smallest first; a lane that ends gives its threads
    to the lanes still running (``SharedThreads``). A fold stops once an earlier fold is
    pruned, since one by one it would never have started; a fold pruned while an earlier
    one still runs waits for it, as the earlier one may be pruned first. The reports of
    the folds before the first pruned one, and of that one up to its pruning, then go to
    the trial in fold order. The rounds of folds fitted beside a pruned one count in the
    trial's ``boosting_rounds``: they were fitted."""

    def __init__(  # noqa: PLR0913 - the trial, its folds' lanes, and where the runs go
        self,
        objective: Objective,
        trial: optuna.Trial,
        params: dict[str, Any],
        lanes: int,
        runs: list[_Run],
    ) -> None:
        import threading

        from marketpredictor_train.models.threads import SharedThreads, fit_threads

        self.objective = objective
        self.trial = trial
        self.params = params
        self.folds = objective.data.folds
        self.plan = _plan(self.folds, lanes)
        # each lane's share of the threads; the last lanes running get the others'
        self.share = SharedThreads(fit_threads(), len(self.plan))
        self._lock = threading.Lock()
        self._first_pruned = len(self.folds)  # index of the earliest fold pruned so far
        # the pruner's explicit-step decision (lanes() made sure it has one)
        self._judge = getattr(trial.study.pruner, "judge", None) if objective.pruning else None
        # one per fold, in fold order; a fold not started stays as it is
        runs[:] = [_Run(f.index) for f in self.folds]
        self.runs = runs

    def judge(self, step: int, value: float) -> bool:
        assert self._judge is not None
        return bool(self._judge(self.trial.study, self.trial.number, step, value))

    def run(self) -> None:
        import contextvars
        import threading

        for fold in self.folds:  # built once per study, on every thread, before the lanes
            self.objective.fold_data(fold)
        errors: list[BaseException] = []
        workers = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._lane, number, lane, errors),
                name=f"mptrain-fold-lane-{number}",
                daemon=True,
            )
            for number, lane in enumerate(self.plan)
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                # In short waits: a signal the kernel hands to a lane's thread (Ctrl-C)
                # is only acted on when this thread wakes.
                while worker.is_alive():
                    worker.join(0.1)
        except BaseException:  # e.g. Ctrl-C: the lanes stop at their next round
            self._first_pruned = -1
            raise
        if errors:
            raise errors[0]
        self._outcome()

    def _stopped(self, index: int) -> bool:
        """Whether fold ``index`` is past an earlier pruned fold (or every lane stops)."""
        return self._first_pruned < index

    def _lane(self, number: int, lane: list[Fold], errors: list[BaseException]) -> None:
        try:
            with self.share.party(number):
                for fold in lane:
                    if self._stopped(fold.index):
                        return
                    self._fold(fold)
        except BaseException as exc:  # noqa: BLE001 - raised again in the trial's thread
            with self._lock:
                errors.append(exc)
                self._first_pruned = -1  # stop every lane
            return

    def _fold(self, fold: Fold) -> None:
        import optuna

        pruning = self.objective.pruning
        reporter = FoldReporter(
            self.trial,
            fold.index,
            pruning=pruning,
            judge=self.judge if pruning else None,
            cancelled=lambda: self._stopped(fold.index),
        )
        run = self.runs[fold.index]
        run.fitted = 1
        self.objective.fit_one(run, self.objective.fold_data(fold), self.params, reporter)
        if run.pruned is not None and not reporter.pruned:  # stopped, not judged
            run.pruned = None
            return
        run.kept = reporter.kept
        if run.pruned is None and pruning and fold.index < len(self.folds) - 1:
            step = (fold.index + 1) * STEP_STRIDE - 1
            assert run.loss is not None
            run.kept.append((step, run.loss))
            if self.judge(step, run.loss):
                run.pruned = optuna.TrialPruned(f"Pruned after fold {fold.index}")
        if run.pruned is not None:
            with self._lock:
                self._first_pruned = min(self._first_pruned, fold.index)

    def _outcome(self) -> None:
        """The runs as one by one would have made them (the folds up to the first pruned
        one), with every fold's fitted rounds; the reports go to the trial."""
        first = next((r.fold for r in self.runs if r.pruned is not None), len(self.runs))
        for run in self.runs[: first + 1]:
            for step, value in run.kept:
                self.trial.report(value, step)
        for run in self.runs[first + 1 :]:  # fitted beside, not part of the outcome
            run.loss = None
            run.pruned = None


def _plan(folds: list[Fold], lanes: int) -> list[list[Fold]]:
    """The folds of each lane: largest first to the lane with the fewest training rows
    so far, each lane then in fold order (small folds first, so pruning comes early)."""
    loads = [0] * lanes
    plan: list[list[Fold]] = [[] for _ in range(lanes)]
    for fold in sorted(folds, key=lambda f: (-len(f.train_rows), f.index)):
        lane = loads.index(min(loads))
        plan[lane].append(fold)
        loads[lane] += len(fold.train_rows)
    return [sorted(lane, key=lambda f: f.index) for lane in plan if lane]
