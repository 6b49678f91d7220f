"""One exception tree for mptrain; each class carries the exit code the CLI returns for it.

A model that fails validation is not an exception: it is a result whose exit code is
:data:`EXIT_VALIDATION_FAILED` (2). Tracking problems are warnings, never errors."""

from __future__ import annotations

from marketpredictor_train.redact import redact


class MptrainError(Exception):
    """Base of every error mptrain reports to its user (exit code 1 unless a subclass says)."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Messages quote URLs and library errors, which may carry credentials: masked here,
        # once, for every place an error is shown or written.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class DataError(MptrainError):
    """The market data could not be loaded or failed its checks (exit 1)."""


class TrainingError(MptrainError):
    """The model could not be trained (exit 1)."""


class StoreError(MptrainError):
    """The model store could not be read or changed (exit 1)."""


class ModelFileError(StoreError):
    """A model file is missing, truncated, tampered with or of an unknown format (exit 1)."""


class HookError(MptrainError):
    """The post-promotion command failed; the promotion itself stands (exit 1). ``result``
    is the operation's own result when it attached one (e.g. a rollback's)."""

    result: object = None


class ConfigError(MptrainError):
    """Invalid arguments, settings or config file, or an unknown model type (exit 3)."""

    exit_code = 3


class OutputPathError(ConfigError):
    """``--output-json`` names a file of the model store; nothing is written there (exit 3)."""


EXIT_SUCCESS = 0
EXIT_FAILURE = MptrainError.exit_code
EXIT_VALIDATION_FAILED = 2
EXIT_CONFIG_ERROR = ConfigError.exit_code
