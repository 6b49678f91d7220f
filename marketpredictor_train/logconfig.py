"""Logging set-up, done once by the CLI: readable console lines on stderr, JSON lines in
``logs/training.log`` (size-rotated) with exactly the seed's fields, and every other
library's stdlib logging routed through the same processors."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict

from marketpredictor_train.redact import mask_library_handlers, redact_value

if TYPE_CHECKING:
    from rich.console import Console

LOG_FILE_NAME = "training.log"
_SEED_FIELDS = ("timestamp", "level", "message", "module", "function")
# Keys structlog and our pre-chain add that must not leak into the message text.
_INTERNAL_KEYS = {
    "event",
    "level",
    "timestamp",
    "module",
    "func_name",
    "_record",
    "_from_structlog",
    "metrics",
    "logger",
    "exc_info",
    "stack_info",
}
_NOISY_LIBRARIES = (
    "mlflow",
    "alembic",
    "urllib3",
    "git",
    "optuna",
    "numba",
    "yfinance",
    "matplotlib",
    "PIL",
    "peewee",
    "httpx",
    "httpcore",
    "filelock",
)


def _timestamp(_: Any, __: str, event_dict: EventDict) -> EventDict:
    # The seed's timestamps are naive ISO with microseconds; ours are that, in UTC.
    event_dict["timestamp"] = (
        datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    )
    return event_dict


def _seed_json(_: Any, __: str, event_dict: EventDict) -> str:
    """Render one JSON line with exactly the seed's fields (+ metrics when present).

    Key/values other than metrics are appended to the message as ``key=value`` so no
    information is lost and the line keeps the documented shape."""
    extras = {
        k: v for k, v in event_dict.items() if k not in _INTERNAL_KEYS and not k.startswith("_")
    }
    message = str(event_dict.get("event", ""))
    if extras:
        message += " " + " ".join(f"{k}={_short(v)}" for k, v in extras.items())
    if event_dict.get("exc_info") or event_dict.get("exception"):
        pass  # the exception text was already folded in by format_exc_info
    line: dict[str, Any] = {
        "timestamp": event_dict.get("timestamp"),
        "level": str(event_dict.get("level", "info")).upper(),
        "message": message,
        "module": event_dict.get("module"),
        "function": event_dict.get("func_name"),
    }
    if "metrics" in event_dict and event_dict["metrics"] is not None:
        line["metrics"] = event_dict["metrics"]
    return json.dumps(line, default=str)


def _redact(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Mask credentials in every value of a line (its message, key/values and exception
    text), ours and other libraries' alike, before it reaches the console or the file."""
    return {k: redact_value(v) if k != "_record" else v for k, v in event_dict.items()}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def _pre_chain() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _timestamp,
        structlog.processors.CallsiteParameterAdder(
            [
                structlog.processors.CallsiteParameter.MODULE,
                structlog.processors.CallsiteParameter.FUNC_NAME,
            ]
        ),
    ]


def configure_logging(
    *,
    level: str = "INFO",
    logs_dir: Path | None = Path("logs"),
    console: Console | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> Path | None:
    """Configure structlog and stdlib logging; returns the JSON log file path (or None)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO

    structlog.configure(
        processors=[
            *_pre_chain(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mptrain", False):
            root.removeHandler(handler)
            handler.close()

    quiet_interrupt = _QuietInterrupt()
    console_handler = _console_handler(console)
    console_handler.setLevel(numeric)
    console_handler.addFilter(quiet_interrupt)
    root.addHandler(console_handler)

    log_path: Path | None = None
    if logs_dir is not None:
        logs_dir = Path(logs_dir)
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = logs_dir / LOG_FILE_NAME
        file_handler = logging.handlers.RotatingFileHandler(
            log_path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _redact,
                    _seed_json,
                ],
                foreign_pre_chain=_pre_chain(),
            )
        )
        file_handler.setLevel(numeric)
        file_handler.addFilter(quiet_interrupt)
        file_handler._mptrain = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)

    root.setLevel(numeric)
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    # A library that attached a handler of its own (MLflow, imported before with its
    # logging on) prints past ours: its records are masked too.
    mask_library_handlers()
    return log_path


# Optuna's warnings about a trial that stopped on Ctrl-C (its first names the trial).
_OPTUNA_FAILED_TRIAL = re.compile(r"Trial (\d+) failed with ")


class _QuietInterrupt(logging.Filter):
    """Ctrl-C is no fault: a record carrying a KeyboardInterrupt is one line without the
    traceback, Optuna's "Trial N failed ... because of KeyboardInterrupt()" says the trial
    stopped on Ctrl-C, and its "Trial N failed with value None." after it is left out (the
    command itself then says it was interrupted, exit 130)."""

    def __init__(self) -> None:
        super().__init__()
        self._stopped: set[str] = set()  # the trials Optuna reported stopped by Ctrl-C

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        interrupt = info is not None and isinstance(info[1], KeyboardInterrupt)
        if interrupt:
            record.exc_info = record.exc_text = None
        if not record.name.startswith("optuna") or not (interrupt or self._stopped):
            return True
        found = _OPTUNA_FAILED_TRIAL.match(record.getMessage())
        if found is None:
            return True
        if interrupt:
            self._stopped.add(found.group(1))
            record.msg = f"Trial {found.group(1)} stopped by Ctrl-C (the study records it failed)"
            record.args = ()
            return True
        return found.group(1) not in self._stopped


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was
    set up: a live progress display swaps in a proxy that prints lines above its bars."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ and setStream assign it; the lookup stays dynamic


def _console_handler(console: Console | None) -> logging.Handler:
    colors = bool(console is not None and console.is_terminal and not console.no_color)
    handler: logging.StreamHandler
    if console is None or console.file is sys.stderr:
        handler = _CurrentStderrHandler()
    else:
        handler = logging.StreamHandler(console.file)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _drop_callsite,
                structlog.processors.format_exc_info,
                _redact,
                _round_for_people,
                structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=0),
            ],
            foreign_pre_chain=_pre_chain(),
        )
    )
    handler._mptrain = True  # type: ignore[attr-defined]
    return handler


# Significant digits of a float on the console; the JSON log file keeps every digit.
CONSOLE_DIGITS = 4


def _round_for_people(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Floats (also inside dicts and lists, e.g. ``metrics``) to :data:`CONSOLE_DIGITS`
    significant digits: 0.5123 reads better than 0.51234567890123457."""
    for key, value in event_dict.items():
        if key != "event":
            event_dict[key] = _rounded(value)
    return event_dict


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{CONSOLE_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_rounded(v) for v in value)
    return value


def _drop_callsite(_: Any, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("module", None)
    event_dict.pop("func_name", None)
    return event_dict
