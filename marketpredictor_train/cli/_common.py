"""Options shared by several commands, and the settings/logging set-up every command does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketpredictor_train.errors import MptrainError

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings


class PeriodChoice(StrEnum):
    y1 = "1y"
    y2 = "2y"
    y3 = "3y"
    y5 = "5y"
    y10 = "10y"


class LogLevelChoice(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class DeviceChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def complete_model_type(incomplete: str) -> list[str]:
    """Model type names from the entry-point group, without importing any model library."""
    from importlib.metadata import entry_points

    names = sorted({ep.name for ep in entry_points(group="marketpredictor_train.model_types")})
    return [n for n in names if n.startswith(incomplete)]


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
    LogLevelChoice | None,
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
    PeriodChoice | None,
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
        help="Moves smaller than this (0.002 = 0.2%) get no label and are left out of "
        "training and backtest [default: 0].",
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
    DeviceChoice | None,
    typer.Option(
        "--device", help="Where to fit: auto (GPU when present), cpu or cuda [default: auto]."
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed [default: 42].")]
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


def build_settings(config: Path | None, **flags: Any) -> Settings:
    """Settings in force for this command: flags given here win over env, file and defaults."""
    from marketpredictor_train.config import load_settings

    cleaned = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in flags.items()}
    return load_settings(config_file=config, **cleaned)


def setup_logging(settings: Settings) -> None:
    from marketpredictor_train.cli._console import err_console
    from marketpredictor_train.logconfig import configure_logging

    configure_logging(
        level=settings.log_level if not settings.quiet else "WARNING",
        logs_dir=settings.logs_dir,
        console=err_console(),
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )


def run_reported[R](
    output_json: Path | None,
    run: Callable[[], R],
    render: Callable[[R], None],
) -> R:
    """Run a command's library call; render its result and write --output-json, which is
    also written (with the error) when the call raises, before the error boundary maps the
    exception to its exit code."""
    started = time.monotonic()
    try:
        result = run()
    except MptrainError as exc:
        if output_json is not None:
            from marketpredictor_train.results import failure_document

            write_json(output_json, failure_document(exc, duration_s=time.monotonic() - started))
        raise
    render(result)
    if output_json is not None:
        write_json(output_json, result.to_dict())  # type: ignore[attr-defined]
    return result


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON document atomically (a reader never sees half a file)."""
    from marketpredictor_train.fileio import atomic_write_text

    atomic_write_text(path.expanduser(), json.dumps(document, indent=2, default=str) + "\n")
