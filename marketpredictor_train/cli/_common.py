"""Options shared by several commands, and the settings/logging set-up every command does."""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON document atomically (a reader never sees half a file)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
