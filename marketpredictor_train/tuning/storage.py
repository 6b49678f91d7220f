"""Where studies live: a local SQLite file by default, or any SQLAlchemy URL (PostgreSQL
for a tuning farm) through Optuna's RDB storage, with heartbeats so that the trial of a
crashed worker is failed and run again instead of hanging in RUNNING forever."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from marketpredictor_train.errors import ConfigError, TrainingError
from marketpredictor_train.redact import mask_url

if TYPE_CHECKING:
    import optuna
    import sqlalchemy.engine

    from marketpredictor_train.config import Settings

log = structlog.get_logger(__name__)

DEFAULT_STORAGE_FILE = "optuna.db"
# A crashed worker's trial is run once more; a trial that kills its worker twice is not.
MAX_RETRIES_OF_STALE_TRIAL = 1


def default_storage_path(settings: Settings) -> Path:
    """The local study database: ``<models_dir>/optuna.db`` (``./models/optuna.db``)."""
    return Path(settings.models_dir).expanduser().resolve() / DEFAULT_STORAGE_FILE


def storage_url(settings: Settings) -> str:
    """The storage URL in force: ``--storage``/``MPTRAIN_STORAGE``, else the local file."""
    if settings.storage:
        return settings.storage
    return f"sqlite:///{default_storage_path(settings)}"


def describe_storage(url: str) -> str:
    """``url`` fit for logs and result files: the password, if any, masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<unparseable storage URL>"
    return mask_url(url)


def open_storage(url: str, *, heartbeat_s: int) -> optuna.storages.RDBStorage:  # noqa: C901 - a case per way a storage URL or its database can fail
    """Optuna's RDB storage at ``url``; ConfigError (exit 3) for a malformed URL or a
    missing database driver, TrainingError (exit 1) when the database cannot be reached."""
    import optuna
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except ValueError as exc:  # the port is not a number
        raise ConfigError(
            "Bad study storage URL: the port must be a number from 1 to 65535",
            hint="Use e.g. postgresql://user:password@host:5432/optuna",
        ) from exc
    except sa_exc.ArgumentError as exc:
        raise ConfigError(
            f"Bad study storage URL {mask_url(url)!r}: {exc}",
            hint="Use e.g. postgresql://user:password@host:5432/optuna or "
            "sqlite:///path/to/optuna.db",
        ) from exc
    _check_port(url, parsed)
    if parsed.drivername == "postgresql" and _importable("psycopg2") and not _importable("psycopg"):
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the driver shipped with
        # mptrain is psycopg2, so a plain URL (as people write them) must mean that.
        parsed = parsed.set(drivername="postgresql+psycopg2")
        url = parsed.render_as_string(hide_password=False)
    shown = describe_storage(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Several local workers may share the file: wait for its lock instead of failing.
        engine_kwargs: dict[str, object] = {"connect_args": {"timeout": 60}}
    else:
        # A farm's connections idle between trials; a dropped one is replaced, not fatal.
        engine_kwargs = {"pool_pre_ping": True}

    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental; they are what makes resuming work.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=2 * heartbeat_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRIES_OF_STALE_TRIAL
                    ),
                )
            if parsed.get_backend_name() == "sqlite":
                _tune_sqlite(storage)
            return storage
        except (sa_exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
            raise ConfigError(
                f"The study storage {shown} needs a database driver that is not installed: {exc}",
                hint="PostgreSQL works out of the box (psycopg2); for another database "
                "install its SQLAlchemy driver.",
            ) from exc
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError) as exc:
            # Workers that start together race to create Optuna's tables; the loser
            # finds them made on its next attempt.
            if attempt == attempts:
                raise TrainingError(f"Cannot set up the study storage {shown}: {exc}") from exc
            log.info("Study storage busy being created; retrying", storage=shown)
            time.sleep(0.5 * attempt)
        except sa_exc.OperationalError as exc:
            if attempt == attempts:
                raise TrainingError(
                    f"Cannot reach the study storage {shown}: {_first_line(exc)}",
                    hint="Check the --storage URL, that the database server runs and that "
                    "this machine may connect to it.",
                ) from exc
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def _check_port(url: str, parsed: sqlalchemy.engine.URL) -> None:
    """ConfigError for a port that is not a number from 1 to 65535 (SQLAlchemy would raise
    a bare ValueError, or the driver refuse it as if the server were unreachable)."""
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(
            f"Bad study storage URL {describe_storage(url)}: the port must be a number from "
            "1 to 65535",
            hint="Use e.g. postgresql://user:password@host:5432/optuna",
        )


def _tune_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Write-ahead logging with NORMAL sync on the study file: every pruning report is a
    commit, and a full fsync per commit cost more than the boosting rounds it judged.
    WAL also lets local workers read while one writes; a power cut may lose the last
    trials, never the file."""
    from sqlalchemy import event

    def _pragmas(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", _pragmas)
    storage.engine.dispose()  # connections opened before the listener reconnect with it


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
