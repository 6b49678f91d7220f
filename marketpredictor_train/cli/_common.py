"""Options shared by several commands (each named as the setting it sets), and the
settings, logging and JSON set-up every command does."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from marketpredictor_train.errors import (
    MptrainError,
    OutputPathError,
    file_system_error,
    interrupted,
)

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.results import Result


# The choices of the settings of the same names in config.py (a test checks they agree;
# config itself is too slow to import for --help and shell completion).
Period = Literal["1y", "2y", "3y", "5y", "10y"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Device = Literal["auto", "cpu", "cuda"]
PrimaryMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
Calibration = Literal["isotonic", "platt", "none"]


def complete_model_type(incomplete: str) -> list[str]:
    """Model type names from the entry-point group, without importing any model library."""
    from importlib.metadata import entry_points

    names = sorted({ep.name for ep in entry_points(group="marketpredictor_train.model_types")})
    return [n for n in names if n.startswith(incomplete)]


def complete_version(ctx: typer.Context, incomplete: str) -> list[str]:
    """Versions in the model store, from the folder listing alone (no model file is read).

    The folder is --models-dir if already typed, else MPTRAIN_MODELS_DIR, else ./models;
    a models_dir set only in a config file is not consulted, to keep completion instant."""
    from marketpredictor_train import api

    models_dir = ctx.params.get("models_dir") or os.environ.get("MPTRAIN_MODELS_DIR") or "models"
    return [v for v in api.version_names(Path(models_dir)) if v.startswith(incomplete)]


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Config file (TOML). Default: ./mptrain.toml or [tool.mptrain] in ./pyproject.toml.",
        exists=True,
        dir_okay=False,
        envvar="MPTRAIN_CONFIG",
        show_envvar=False,
    ),
]
ModelsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        help="Model store folder [env MPTRAIN_MODELS_DIR; default: ./models].",
        file_okay=False,
    ),
]
LogsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--logs-dir",
        help="Folder of training.log [env MPTRAIN_LOGS_DIR; default: ./logs].",
        file_okay=False,
    ),
]
LogLevelOpt = Annotated[
    LogLevel | None,
    typer.Option("--log-level", help="Logging level [default: INFO].", case_sensitive=False),
]
QuietOpt = Annotated[
    bool | None,
    typer.Option(
        "--quiet", "-q", help="Only warnings and errors on the console; no progress bars."
    ),
]
OutputJsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-json",
        help="Write the run's result as one JSON document (also on failure).",
        dir_okay=False,
    ),
]


# Options of the data, label and model steps, shared by train, optimize and validate.
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Market data: yahoo, sample (offline, bundled), or a CSV/Parquet file or "
        "folder [default: yahoo].",
    ),
]
TickersOpt = Annotated[
    str | None,
    typer.Option("--tickers", help="Comma-separated tickers [default: the source's universe]."),
]
PeriodOpt = Annotated[
    Period | None,
    typer.Option(
        "--period",
        help="Historical data period, counted back from the last date in the data [default: 5y].",
    ),
]
OfflineOpt = Annotated[
    bool | None,
    typer.Option("--offline", help="Use only the market-data cache; no network."),
]
HorizonOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon",
        min=1,
        max=60,
        help="Trading days the label looks ahead; also the least purge gap [default: 1].",
    ),
]
DeadBandOpt = Annotated[
    float | None,
    typer.Option(
        "--dead-band",
        min=0.0,
        max=0.49,
        help="Training rows whose move is smaller than this (0.002 = 0.2%) are left out; "
        "the backtest scores every row [default: 0].",
    ),
]
ModelTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--model-type",
        help="Model type: xgb, rf, lgb, or any installed plugin type [default: xgb].",
        autocompletion=complete_model_type,
    ),
]
DeviceOpt = Annotated[
    Device | None,
    typer.Option(
        "--device", help="Where to fit: auto (GPU when present), cpu or cuda [default: auto]."
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed [default: 42].")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=1024,
        help="Threads per model fit [env MPTRAIN_THREADS; default: auto, the cores this "
        "process may use, fewer for small data].",
    ),
]
StudyStorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        metavar="URL",
        help="Optuna study database (SQLAlchemy URL), e.g. "
        "postgresql://user:pass@host:5432/optuna, shared by every worker "
        "[env MPTRAIN_STORAGE; default: sqlite in <models-dir>/optuna.db].",
    ),
]
StudyNameOpt = Annotated[
    str | None,
    typer.Option(
        "--study-name",
        metavar="NAME",
        help="Optuna study to create or join; workers with the same name and storage share "
        "it [default: mptrain-<type>-h<horizon>-<hash of the data and folds>].",
    ),
]


# Options of the validation stage, shared by train and validate.
BacktestMonthsOpt = Annotated[
    int | None,
    typer.Option(
        "--backtest-months",
        min=1,
        max=60,
        help="Months at the end of the data held out as the backtest [default: 6].",
    ),
]
EmbargoDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--embargo-days",
        min=0,
        help="Extra trading days dropped between training and backtest, on top of the "
        "label horizon [default: 0].",
    ),
]
CostPerTradeOpt = Annotated[
    float | None,
    typer.Option(
        "--cost-per-trade",
        min=0.0,
        max=0.1,
        help="Trading cost per unit of capital bought or sold, for the trading view "
        "(0.0005 = 5 basis points) [default: 0.0005].",
    ),
]
PrimaryMetricOpt = Annotated[
    PrimaryMetric | None,
    typer.Option(
        "--primary-metric",
        help="Metric on which a new model must not be worse than production, on the same "
        "backtest rows [default: accuracy].",
    ),
]
ReportDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        file_okay=False,
        help="Folder for the validation report (report.md, report.html, report.json, plots) "
        "[default: models/reports/<version>/; for a dry run logs/reports/].",
    ),
]
SkillGateOpt = Annotated[
    bool | None,
    typer.Option(
        "--skill-gate/--no-skill-gate",
        help="Require skill: beat the better naive baseline (always up, yesterday's "
        "direction) on the same rows with the paired interval's lower bound above 0, and "
        "forecast better than the training base rate [default: on].",
    ),
]
GateLevelOpt = Annotated[
    float | None,
    typer.Option(
        "--gate-level",
        min=0.5,
        max=0.999,
        help="Confidence level of the paired intervals the gate reads (two-sided; 0.90 "
        "leaves 5% below the lower bound) [default: 0.90].",
    ),
]
ChampionMarginOpt = Annotated[
    float | None,
    typer.Option(
        "--champion-margin",
        min=0.0,
        max=0.2,
        help="How much worse than production a new model may be on the primary metric "
        "(lower bound of the paired interval above -margin; 0.01 = 1 point) "
        "[default: 0.01].",
    ),
]
CalibrationOpt = Annotated[
    Calibration | None,
    typer.Option(
        "--calibration",
        help="Calibrate P(up) on the last purged fold of the training part: isotonic, "
        "platt, or none [default: isotonic].",
    ),
]
UniverseOpt = Annotated[
    Path | None,
    typer.Option(
        "--universe",
        dir_okay=False,
        help="Index membership file (CSV/Parquet: ticker, start, end): rows outside a "
        "ticker's membership are left out of training and backtest [default: the fixed "
        "ticker list].",
    ),
]
MinAccuracyOpt = Annotated[
    float | None,
    typer.Option(
        "--min-accuracy", min=0.0, max=1.0, help="Minimum backtest accuracy [default: 0.60]."
    ),
]
MinPrecisionOpt = Annotated[
    float | None,
    typer.Option(
        "--min-precision", min=0.0, max=1.0, help="Minimum backtest precision [default: 0.55]."
    ),
]
MinRecallOpt = Annotated[
    float | None,
    typer.Option("--min-recall", min=0.0, max=1.0, help="Minimum backtest recall [default: 0.50]."),
]
MinF1Opt = Annotated[
    float | None,
    typer.Option("--min-f1", min=0.0, max=1.0, help="Minimum backtest F1 score [default: 0.52]."),
]


def settings_from(ctx: typer.Context, *, skip: tuple[str, ...] = (), **fixed: Any) -> Settings:
    """Settings in force for this command: every option of the command is a setting of the
    same name (except ``config``, ``output_json`` and those in ``skip``); flags given win
    over env, file and defaults; ``fixed`` values are set by the command itself."""
    from marketpredictor_train.config import load_settings

    flags = {k: v for k, v in ctx.params.items() if k not in {"config", "output_json", *skip}}
    flags.update(fixed)
    settings = load_settings(config_file=ctx.params.get("config"), **flags)
    output_json = ctx.params.get("output_json")
    if output_json is not None:
        from marketpredictor_train import api

        api.check_output_json(output_json, settings.models_dir)
    return settings


def setup_logging(settings: Settings) -> None:
    from marketpredictor_train import api
    from marketpredictor_train.cli._console import err_console

    api.configure_logging(settings, err_console())


def run_reported[R: Result](
    command: str,
    output_json: Path | None,
    run: Callable[[], R],
    render: Callable[[R], None],
    *,
    json_stdout: bool = False,
) -> R:
    """Run a command's library call and show its result: rendered for people, or with
    ``json_stdout`` (``--json``) as its JSON document on stdout. The document also goes to
    ``output_json`` when given. On an error the failure document is written the same ways,
    before the error boundary maps the exception to its exit code."""
    from marketpredictor_train import api
    from marketpredictor_train.results import failure_document

    started = time.monotonic()
    try:
        if output_json is not None:
            # Before anything runs (the settings check it against the configured store too).
            api.check_output_json(output_json)
        result = _reported_errors(command, run)
    except MptrainError as exc:
        document = failure_document(command, exc, duration_s=time.monotonic() - started)
        if output_json is not None and not isinstance(exc, OutputPathError):
            _write_failure_json(output_json, document)
        if json_stdout:
            _to_stdout(json.dumps(document, indent=2, default=str))
        raise
    # The document first: a reader that closes stdout early (`| head -1`) must not cost it.
    if output_json is not None:
        _write_output_json(output_json, result.to_dict())
    if json_stdout:
        print_json(result)
    else:
        try:
            render(result)
        except BrokenPipeError:  # stderr's reader went away (`2>&1 | head -1`)
            silence_closed_outputs()
    return result


def _reported_errors[R](command: str, run: Callable[[], R]) -> R:
    """``run()``, a fault of the file system and Ctrl-C becoming the errors reported for
    them."""
    try:
        return run()
    except OSError as exc:  # a full, read-only or immutable disk is no bug: one line
        error = file_system_error(exc)
        if error is None:
            raise
        raise error from exc
    except KeyboardInterrupt as exc:  # Ctrl-C: exit 130, with what it leaves behind
        raise interrupted(command) from exc


def _write_output_json(path: Path, document: dict[str, Any]) -> None:
    from marketpredictor_train import api

    try:
        api.write_json(path, document)
    except OSError as exc:
        error = file_system_error(exc, "Cannot write the --output-json file")
        if error is None:
            raise
        raise error from exc


def _write_failure_json(path: Path, document: dict[str, Any]) -> None:
    """The failure document, when its own path can be written; the run's error is what
    the user must see either way."""
    try:
        _write_output_json(path, document)
    except MptrainError as exc:
        from marketpredictor_train.cli._console import err_console

        err_console().print(f"Warning: {exc.message}", highlight=False, markup=False)


def _to_stdout(text: str) -> None:
    """``text`` on stdout; a reader that went away (EPIPE) loses the rest of it, not the
    run (see :func:`silence_closed_outputs`)."""
    try:
        typer.echo(text)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_closed_outputs()


def silence_closed_outputs() -> None:
    """Point stdout and stderr, where their reader has gone (``| head -1``), at the null
    device, so that later writes and the final flush at exit succeed instead of failing
    the command; an output still read is left alone."""
    import select

    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            gone = any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
        except (OSError, ValueError, AttributeError):
            continue
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)


def print_json(result: Result) -> None:
    """A result's JSON document on stdout (``--json``)."""
    _to_stdout(json.dumps(result.to_dict(), indent=2, default=str))
