"""Settings and their layering: defaults < config file < MPTRAIN_* environment < flags.

The config file is ``mptrain.toml`` (top-level keys) or ``[tool.mptrain]`` in
``pyproject.toml``, looked up in the working directory, or the file named by ``--config``
or ``MPTRAIN_CONFIG``. Every problem with a setting becomes a :class:`ConfigError` (exit 3).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from marketpredictor_train.errors import ConfigError

Period = Literal["1y", "2y", "3y", "5y", "10y"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Device = Literal["auto", "cpu", "cuda"]
PrimaryMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
Calibration = Literal["isotonic", "platt", "none"]

PERIOD_YEARS: dict[str, int] = {"1y": 1, "2y": 2, "3y": 3, "5y": 5, "10y": 10}
CONFIG_FILE_NAME = "mptrain.toml"

_config_path: ContextVar[Path | None] = ContextVar("mptrain_config_path", default=None)


def default_cache_dir() -> Path:
    """Per-user market-data cache: $XDG_CACHE_HOME/mptrain or ~/.cache/mptrain."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mptrain"


class Settings(BaseSettings):
    """Everything a run can be configured with. Field names are the config-file keys;
    the environment variable of a field is ``MPTRAIN_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="MPTRAIN_",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # data
    source: str = "yahoo"
    tickers: Annotated[list[str] | None, NoDecode] = None
    period: Period = "5y"
    cache_dir: Path = Field(default_factory=default_cache_dir)
    offline: bool = False
    min_data_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    download_batch_size: int = Field(default=50, ge=1)
    download_retries: int = Field(default=5, ge=0)
    download_timeout_s: float = Field(default=300.0, gt=0)

    # features and labels; `features` is a feature spec's indicator list (default: the
    # built-in set), e.g. [[features]] kind = "rsi" length = 9 in mptrain.toml
    features: list[dict[str, Any]] | None = None
    horizon: int = Field(default=1, ge=1, le=60)
    dead_band: float = Field(default=0.0, ge=0.0, le=0.49)

    # model
    model_type: str = "xgb"
    device: Device = "auto"
    seed: int = 42
    # Threads per fit; None (or "auto"): the cores this process may use (CPU affinity,
    # cgroup quota), fewer for small data. See models/threads.py.
    threads: int | None = Field(default=None, ge=1, le=1024)

    # validation and promotion
    min_accuracy: float = Field(default=0.60, ge=0.0, le=1.0)
    min_precision: float = Field(default=0.55, ge=0.0, le=1.0)
    min_recall: float = Field(default=0.50, ge=0.0, le=1.0)
    min_f1: float = Field(default=0.52, ge=0.0, le=1.0)
    primary_metric: PrimaryMetric = "accuracy"
    # The skill gate: beat the better naive baseline on the same rows (the paired
    # interval's lower bound above 0) and forecast better than the training base rate.
    skill_gate: bool = True
    # Two-sided level of the paired intervals the gate reads (0.90: 5% below the bound).
    gate_level: float = Field(default=0.90, ge=0.5, le=0.999)
    # Non-inferiority margin vs the champion, in the primary metric's units (0.01 = 1 pt).
    champion_margin: float = Field(default=0.01, ge=0.0, le=0.2)
    calibration: Calibration = "isotonic"
    # Index membership (ticker, start, end): rows outside it are left out (survivorship).
    universe: Path | None = None
    backtest_months: int = Field(default=6, ge=1, le=60)
    embargo_days: int = Field(default=0, ge=0)
    cost_per_trade: float = Field(default=0.0005, ge=0.0, lt=0.1)
    force: bool = False
    dry_run: bool = False
    skip_validation: bool = False
    refit: bool = False
    report_dir: Path | None = None

    # tuning
    optimize: bool = False
    trials: int = Field(default=20, ge=1)
    cv_folds: int = Field(default=4, ge=2, le=20)
    pruning: bool = True
    storage: str | None = None
    study_name: str | None = None
    optimize_timeout_s: float | None = Field(default=None, ge=1)
    # How often a running trial proves its worker alive; after twice this without a beat
    # the trial counts as crashed and is run again by another worker.
    trial_heartbeat_s: int = Field(default=60, ge=1)

    # files, logs, tracking, operations
    models_dir: Path = Path("models")
    logs_dir: Path = Path("logs")
    log_level: LogLevel = "INFO"
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    log_backups: int = Field(default=5, ge=0)
    experiment_name: str = "mptrain"
    mlflow: bool = True
    # The MLflow Model Registry: every saved version is a version of this registered
    # model, and the alias names the one that is production.
    registered_model_name: str = Field(
        default="marketpredictor", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"
    )
    champion_alias: str = "champion"
    post_promote_command: str | None = None
    post_promote_timeout_s: float = Field(default=600.0, gt=0)
    quiet: bool = False

    @field_validator("tickers", mode="before")
    @classmethod
    def _split_tickers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.replace(" ", ",").split(",")]
        if isinstance(value, list | tuple):
            cleaned = [str(t).strip().upper() for t in value if str(t).strip()]
            if not cleaned:
                raise ValueError("the ticker list is empty; give e.g. AAPL,MSFT")
            return cleaned
        return value

    @field_validator("models_dir", "logs_dir", "cache_dir")
    @classmethod
    def _folder_not_file(cls, value: Path) -> Path:
        # A folder that does not exist yet is made when needed; a file in its place (or in
        # place of a parent) would only fail later, deep inside a run.
        for here in (value.expanduser(), *value.expanduser().parents):
            if here.exists():
                if not here.is_dir():
                    raise ValueError(f"{here} is a file, not a folder; name a folder")
                break
        return value

    @field_validator("threads", mode="before")
    @classmethod
    def _auto_threads(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "auto"):
            return None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("champion_alias")
    @classmethod
    def _check_alias(cls, value: str) -> str:
        # MLflow reserves "latest" and "v<number>" (they name versions, not aliases).
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,254}", value) or (
            value.lower() == "latest" or re.fullmatch(r"[vV]\d+", value)
        ):
            raise ValueError(
                "an MLflow alias is a letter or _ followed by letters, digits, _ or -, "
                "and not 'latest' or v<number>"
            )
        return value

    @field_validator("model_type", mode="before")
    @classmethod
    def _lower_model_type(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.force and self.dry_run:
            raise ValueError("--force and --dry-run contradict each other; choose one")
        return self

    @property
    def thresholds(self) -> dict[str, float]:
        return {
            "accuracy": self.min_accuracy,
            "precision": self.min_precision,
            "recall": self.min_recall,
            "f1": self.min_f1,
        }

    @property
    def period_years(self) -> int:
        return PERIOD_YEARS[self.period]

    @property
    def purge_gap(self) -> int:
        """Trading days between the last training label's horizon and the backtest."""
        return self.horizon + self.embargo_days

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads mptrain.toml or [tool.mptrain] of pyproject.toml."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic never calls this

    def __call__(self) -> dict[str, Any]:
        path = find_config_file()
        if path is None:
            return {}
        return read_config_file(path)


def find_config_file() -> Path | None:
    """The config file in force: --config, then MPTRAIN_CONFIG, then the working directory."""
    explicit = _config_path.get() or (
        Path(os.environ["MPTRAIN_CONFIG"]) if os.environ.get("MPTRAIN_CONFIG") else None
    )
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(
                f"Config file not found: {explicit}",
                hint="Check the path given to --config or MPTRAIN_CONFIG.",
            )
        return explicit
    own = Path.cwd() / CONFIG_FILE_NAME
    if own.is_file():
        return own
    pyproject = Path.cwd() / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None  # someone else's broken pyproject is not our config
        if "mptrain" in data.get("tool", {}):
            return pyproject
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Bad config file {path}: {exc}", hint="Fix the TOML syntax or remove the file."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("mptrain", {})
    if not isinstance(data, dict):
        raise ConfigError(f"Bad config file {path}: expected a table of settings")
    return data


# MPTRAIN_* variables that are not settings but are read by mptrain or set for the
# commands it runs: the config file, the signing keys, the thread count, the variables
# the post-promotion command gets (so that it may itself call mptrain), and test seams.
NON_SETTING_ENV_VARS = frozenset(
    {
        "MPTRAIN_CONFIG",
        "MPTRAIN_SIGNING_KEY",
        "MPTRAIN_VERIFY_KEY",
        "MPTRAIN_THREADS",
        "MPTRAIN_VERSION",
        "MPTRAIN_PREVIOUS_VERSION",
        "MPTRAIN_ACTION",
        "MPTRAIN_MODEL_PATH",
    }
)
_NON_SETTING_ENV_PREFIXES = ("MPTRAIN_TEST_",)


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """:class:`ConfigError` for an ``MPTRAIN_*`` variable that is neither a setting nor
    one of :data:`NON_SETTING_ENV_VARS`: a misspelt setting must not be ignored silently,
    just as the same key in the config file is refused."""
    environ = os.environ if environ is None else environ
    fields = set(Settings.model_fields)
    unknown = sorted(
        key
        for key in environ
        if key.upper().startswith("MPTRAIN_")
        and key.upper()[len("MPTRAIN_") :].lower() not in fields
        and key.upper() not in NON_SETTING_ENV_VARS
        and not key.upper().startswith(_NON_SETTING_ENV_PREFIXES)
    )
    if not unknown:
        return
    known = [f"MPTRAIN_{name.upper()}" for name in fields]
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key.upper(), known, n=1)
        parts.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise ConfigError(
        "Unknown environment variable " + ", ".join(parts) + ": not an mptrain setting",
        hint="Fix its spelling or unset it; the settings are listed under Configuration in "
        "the README.",
    )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the Settings in force; ``overrides`` are flag values (None means 'not given')."""
    check_environment()
    flags = {k: v for k, v in overrides.items() if v is not None}
    token = _config_path.set(config_file)
    try:
        return Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _config_path.reset(token)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        msg = err.get("msg", "invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting (check its spelling in the config file or environment)"
            close = difflib.get_close_matches(where, list(Settings.model_fields), n=1)
            if close:
                msg = f"unknown setting (did you mean {close[0]}?)"
        parts.append(f"{where}: {msg}")
    return "Invalid configuration - " + "; ".join(parts)
