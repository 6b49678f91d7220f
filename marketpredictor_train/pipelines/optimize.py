"""`mptrain optimize`: the same guarded rows as `train`, an Optuna session on the study,
and the study's best parameters written to best_hyperparameters.json."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.errors import EXIT_SUCCESS
from marketpredictor_train.pipelines.common import (
    RunContext,
    fitting_threads,
    model_type_and_device,
    prepare_data,
)
from marketpredictor_train.results import OptimizeResult

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.progress import ProgressCallback

log = structlog.get_logger(__name__)


def optimize(settings: Settings, *, progress: ProgressCallback | None = None) -> OptimizeResult:
    """Load the data, run ``settings.trials`` trials on the study and write the study's
    best parameters to ``best_hyperparameters.json``.

    Raises ConfigError (exit 3) for an unknown model type, a bad storage URL or a study of
    another model type; DataError/TrainingError (exit 1) when data or fits fail."""
    from marketpredictor_train.tuning.best_params import best_params_path, write_best_params
    from marketpredictor_train.tuning.run import best_params_document, data_window, tune

    run = RunContext()
    timer = run.timer
    with run.bound():
        model_cls, device = model_type_and_device(settings)
        log.info(
            "Optimization started",
            model_type=model_cls.name,
            trials=settings.trials,
            source=settings.source,
            period=settings.period,
            horizon=settings.horizon,
            device=device,
        )
        _, dataset = prepare_data(settings, timer, progress)
        with fitting_threads(settings, dataset), timer("optimize"):
            outcome = tune(settings, model_cls, dataset, device=device, progress=progress)
        with timer("store"):
            path = write_best_params(
                best_params_path(settings), best_params_document(settings, outcome, dataset)
            )
        log.info(
            "Best hyperparameters saved",
            path=str(path),
            study=outcome.study_name,
            best_trial=outcome.best_trial,
            cv_log_loss=round(outcome.best_value, 6),
        )
        return OptimizeResult(
            status="completed",
            exit_code=EXIT_SUCCESS,
            tuning=outcome,
            params_file=str(path),
            data_window=data_window(settings, dataset),
            n_train=dataset.train.height,
            timings=timer.timings,
            duration_s=run.elapsed(),
            run_id=run.run_id,
            warnings=outcome.warnings,
        )
