"""logs/training.log: JSON lines of exactly the seed's shape, rotated by size so a weekly
job never fills a disk, at the level --log-level asks for."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from marketpredictor_train.logconfig import LOG_FILE_NAME, configure_logging

SEED_FIELDS = ["timestamp", "level", "message", "module", "function"]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """The logs folder of a test (created by the logging set-up itself)."""
    return tmp_path / "logs"


def _quiet_console() -> Console:
    return Console(file=io.StringIO(), width=100)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_line_has_exactly_the_seed_fields(logs: Path):
    configure_logging(level="INFO", logs_dir=logs, console=_quiet_console())
    structlog.get_logger(__name__).info("Dataset loaded", rows=1200, tickers=3)
    (line,) = _lines(logs / LOG_FILE_NAME)

    assert list(line) == SEED_FIELDS
    assert line["level"] == "INFO"
    assert line["message"] == "Dataset loaded rows=1200 tickers=3"
    assert line["module"] == "test_logging"
    assert line["function"] == "test_json_line_has_exactly_the_seed_fields"
    datetime.fromisoformat(line["timestamp"])


def test_json_line_carries_metrics_when_the_step_has_them(logs: Path):
    configure_logging(level="INFO", logs_dir=logs, console=_quiet_console())
    metrics = {"accuracy": 0.532, "precision": 0.541, "recall": 0.61, "f1": 0.573}
    structlog.get_logger(__name__).info("Training complete - Accuracy: 53.20%", metrics=metrics)
    (line,) = _lines(logs / LOG_FILE_NAME)

    assert list(line) == [*SEED_FIELDS, "metrics"]
    assert line["metrics"] == metrics
    assert line["message"] == "Training complete - Accuracy: 53.20%"


def test_other_libraries_stdlib_logging_gets_the_same_shape(logs: Path):
    configure_logging(level="INFO", logs_dir=logs, console=_quiet_console())
    logging.getLogger("some.library").warning("retrying %s", "AAPL")
    (line,) = _lines(logs / LOG_FILE_NAME)

    assert list(line) == SEED_FIELDS
    assert line["level"] == "WARNING"
    assert line["message"] == "retrying AAPL"


def test_log_file_rotates_by_size_and_keeps_the_configured_backups(logs: Path):
    max_bytes, backups = 2048, 2
    configure_logging(
        level="INFO",
        logs_dir=logs,
        console=_quiet_console(),
        max_bytes=max_bytes,
        backups=backups,
    )
    log = structlog.get_logger(__name__)
    for i in range(200):  # ~40 kB of lines: many times what the files may hold
        log.info("Trial finished", trial=i, value=0.5 + i / 1000)

    files = sorted(p.name for p in logs.iterdir())
    assert files == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    for name in files:
        path = logs / name
        assert path.stat().st_size <= max_bytes
        assert all(list(line) == SEED_FIELDS for line in _lines(path))
    # The newest lines are in the live file; the oldest have been dropped.
    assert "trial=199" in _lines(logs / LOG_FILE_NAME)[-1]["message"]
    kept = [line["message"] for name in files for line in _lines(logs / name)]
    assert not any(message.startswith("Trial finished trial=0 ") for message in kept)


def test_rotation_limits_come_from_the_settings(logs: Path, monkeypatch):
    """MPTRAIN_LOG_MAX_BYTES / MPTRAIN_LOG_BACKUPS (or the config file) reach the handler
    the CLI installs."""
    from marketpredictor_train.cli._common import setup_logging
    from marketpredictor_train.config import load_settings

    monkeypatch.setenv("MPTRAIN_LOG_MAX_BYTES", "1024")
    monkeypatch.setenv("MPTRAIN_LOG_BACKUPS", "1")
    setup_logging(load_settings(logs_dir=logs))
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert (handler.maxBytes, handler.backupCount) == (1024, 1)
    log = structlog.get_logger(__name__)
    for i in range(100):
        log.info("Batch downloaded", batch=i)
    assert sorted(p.name for p in logs.iterdir()) == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1"]


@pytest.mark.parametrize(
    ("flag", "kept"),
    [
        ("DEBUG", {"DEBUG", "INFO", "WARNING", "ERROR"}),
        ("info", {"INFO", "WARNING", "ERROR"}),
        ("WARNING", {"WARNING", "ERROR"}),
        ("error", {"ERROR"}),
    ],
)
def test_log_level_flag_filters_the_log_file(logs: Path, flag: str, kept: set[str]):
    from marketpredictor_train.cli._common import setup_logging
    from marketpredictor_train.config import load_settings

    setup_logging(load_settings(log_level=flag, logs_dir=logs))
    log = structlog.get_logger(__name__)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert {line["level"] for line in _lines(logs / LOG_FILE_NAME)} == kept


def test_quiet_keeps_the_console_to_warnings_but_not_the_file(logs: Path, monkeypatch):
    from marketpredictor_train.cli import _console
    from marketpredictor_train.cli._common import setup_logging
    from marketpredictor_train.config import load_settings

    console = _quiet_console()
    monkeypatch.setattr(_console, "err_console", lambda: console)
    setup_logging(load_settings(quiet=True, logs_dir=logs))
    log = structlog.get_logger(__name__)
    log.info("Dataset loaded")
    log.warning("Ticker dropped")
    shown = console.file.getvalue()
    assert "Ticker dropped" in shown and "Dataset loaded" not in shown
    assert [line["level"] for line in _lines(logs / LOG_FILE_NAME)] == ["WARNING"]


@pytest.mark.parametrize("command", ["train", "models-list", "rollback"])
def test_unknown_log_level_is_a_configuration_error(cli, command: str):
    result = cli(command, "--log-level", "VERBOSE")
    assert result.exit_code == 3
    assert "--log-level" in result.stderr


def test_console_rounds_floats_for_people_and_the_file_keeps_every_digit(logs: Path):
    console = _quiet_console()
    configure_logging(level="INFO", logs_dir=logs, console=console)
    metrics = {"accuracy": 0.48440748440748443, "f1": 0.5123456789012345}
    structlog.get_logger(__name__).info("Training complete", metrics=metrics, loss=0.69314718)
    shown = console.file.getvalue()
    assert "0.4844" in shown and "0.5123" in shown and "loss=0.6931" in shown
    assert "0.48440748440748443" not in shown and "0.69314718" not in shown
    (line,) = _lines(logs / LOG_FILE_NAME)
    assert line["metrics"] == metrics
    assert "loss=0.69314718" in line["message"]


def test_a_trial_stopped_by_ctrl_c_is_one_line_without_a_traceback(logs: Path):
    """Optuna logs a trial that Ctrl-C stopped as a failure with its traceback, then again
    as "failed with value None": one line says the trial stopped, on the console and in
    the file; another trial's failure is still logged whole."""
    from marketpredictor_train.tuning.run import _route_optuna_logging

    console = _quiet_console()
    configure_logging(level="INFO", logs_dir=logs, console=console)
    _route_optuna_logging()  # as a tuning run does: Optuna's records reach our handlers
    optuna_log = logging.getLogger("optuna.study._optimize")
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        optuna_log.warning(
            "Trial 5 failed with parameters: {'max_depth': 9} because of the following "
            "error: KeyboardInterrupt().",
            exc_info=True,
        )
    optuna_log.warning("Trial 5 failed with value None.")
    try:
        raise ValueError("a real fault")
    except ValueError:
        optuna_log.warning("Trial 6 failed with parameters: {}.", exc_info=True)
    shown = console.file.getvalue()
    messages = [line["message"] for line in _lines(logs / LOG_FILE_NAME)]

    assert "Trial 5 stopped by Ctrl-C (the study records it failed)" in shown
    assert "KeyboardInterrupt" not in shown and "Trial 5 failed" not in shown
    assert messages[0] == "Trial 5 stopped by Ctrl-C (the study records it failed)"
    assert len(messages) == 2 and "ValueError: a real fault" in messages[1]
    assert "Traceback" in shown  # the other trial's fault keeps its traceback
