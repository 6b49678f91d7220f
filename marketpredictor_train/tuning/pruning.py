"""The pruner: Optuna's median rule applied to the value a trial just reported.

Optuna's MedianPruner compares a trial's *best* value so far with the median of completed
trials at the same step. On daily direction, validation log loss often bottoms out after a
few boosting rounds and then climbs as the model fits noise; judging the latest value stops
such a trial once it is worse, at that step of that fold, than half the finished trials.
On the sample data, with the same 40 trials tried both ways (benchmarks/bench_tuning.py),
this fitted 37% of the boosting rounds of an unpruned run against 41% for MedianPruner,
and found the same best trial. It also reads the completed trials once per trial, where
MedianPruner reads them on every decision (about 4 ms each on SQLite).
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


class LatestValueMedianPruner(optuna.pruners.BasePruner):
    """Prune when the value reported at the trial's last step is worse than the median of
    the completed trials' values at that same step.

    Nothing is pruned until ``n_startup_trials`` trials have completed, nor at a step that
    fewer than ``n_min_trials`` completed trials reached. The completed trials are read from
    the storage once per trial: reading them on every decision cost more than the boosting
    rounds it judged, and one worker's set of completed trials only changes between its
    trials, so its decisions stay reproducible. In a farm, a trial is judged against the
    trials completed when its first decision came."""

    def __init__(self, *, n_startup_trials: int = 5, n_min_trials: int = 3) -> None:
        if n_startup_trials < 0 or n_min_trials < 1:
            raise ValueError("n_startup_trials must be >= 0 and n_min_trials >= 1")
        self.n_startup_trials = n_startup_trials
        self.n_min_trials = n_min_trials
        self._cache: tuple[int, int, list[FrozenTrial]] | None = None
        self._lock = threading.Lock()

    def _completed(self, study: optuna.Study, number: int) -> list[FrozenTrial]:
        with self._lock:  # the folds of one trial may be judged from several threads
            if self._cache is not None:
                study_id, cached_number, trials = self._cache
                if study_id == id(study) and cached_number == number:
                    return trials
            trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            self._cache = (id(study), number, trials)
            return trials

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        return self.judge(study, trial.number, step, trial.intermediate_values[step])

    def judge(self, study: optuna.Study, number: int, step: int, value: float) -> bool:
        """The decision :meth:`prune` makes for trial ``number`` had it just reported
        ``value`` at ``step``, without that report being in the storage: folds fitted at
        the same time are judged each at its own step, as one after the other would be."""
        completed = self._completed(study, number)
        if len(completed) < max(self.n_startup_trials, 1):
            return False
        if math.isnan(value):
            return True
        others = sorted(
            t.intermediate_values[step]
            for t in completed
            if step in t.intermediate_values and not math.isnan(t.intermediate_values[step])
        )
        if len(others) < self.n_min_trials:
            return False
        middle = len(others) // 2
        median = others[middle] if len(others) % 2 else (others[middle - 1] + others[middle]) / 2
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < median
        return value > median
