"""Hyperparameter optimisation with Optuna: purged walk-forward folds of the training part,
pruning, studies in a local SQLite file or a shared database, and best_hyperparameters.json.
"""

from marketpredictor_train.tuning.best_params import BEST_PARAMS_FILE, read_best_params
from marketpredictor_train.tuning.cv import Fold, walk_forward_folds
from marketpredictor_train.tuning.results import TuningOutcome
from marketpredictor_train.tuning.run import choose_params, tune

__all__ = [
    "BEST_PARAMS_FILE",
    "Fold",
    "TuningOutcome",
    "choose_params",
    "read_best_params",
    "tune",
    "walk_forward_folds",
]
