"""One exception tree for mptrain; each class carries the exit code the CLI returns for it.

A model that fails validation is not an exception: it is a result whose exit code is
:data:`EXIT_VALIDATION_FAILED` (2). Tracking problems are warnings, never errors."""

from __future__ import annotations

import errno

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


class FileSystemError(MptrainError):
    """A file or folder could not be written or read: disk full, read-only, immutable,
    no permission, or a file where a folder should be (exit 1)."""


class ModelFileError(StoreError):
    """A model file is missing, truncated, tampered with or of an unknown format (exit 1)."""


class HookError(MptrainError):
    """The post-promotion command failed; the promotion itself stands (exit 1). ``result``
    is the operation's own result when it attached one (e.g. a rollback's)."""

    result: object = None


class ConfigError(MptrainError):
    """Invalid arguments, settings or config file, or an unknown model type (exit 3)."""

    exit_code = 3


class Interrupted(MptrainError):
    """The person or scheduler stopped the command (Ctrl-C, SIGINT): exit 130, the code a
    shell reports for it."""

    exit_code = 130


# What an interrupted command leaves, for those that leave something to go on from.
_INTERRUPTED_HINTS = {
    "train": "Nothing is half-written: production is the model it was before this run, "
    "unless the run had already promoted its own (mptrain models-list shows which).",
    "optimize": "The study keeps every trial that finished; run the same command again to go on.",
    "backtest": "Every finished step is cached; run the same command again to go on.",
}


def interrupted(command: str) -> Interrupted:
    """The error to report for ``command`` stopped by Ctrl-C."""
    return Interrupted(f"{command} interrupted (Ctrl-C)", hint=_INTERRUPTED_HINTS.get(command))


# errno -> what it means for the person at the terminal, for the faults of the file system
# a run can meet (other OSErrors, e.g. of the network, are not described here).
_FILE_SYSTEM_FAULTS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or the file size limit (ulimit -f)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (an immutable folder or file? see lsattr)",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.EEXIST: "a file stands where a folder is needed",
    errno.EIO: "input/output error (a failing disk or a lost network file system)",
    errno.ENAMETOOLONG: "the name is too long",
}


def describe_os_error(exc: OSError) -> str | None:
    """'<path>: <cause>' for a file-system fault, None for any other OSError."""
    cause = _FILE_SYSTEM_FAULTS.get(exc.errno or 0)
    if cause is None:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    return f"{where}: {cause}"


def file_system_error(exc: OSError, doing: str = "Cannot write") -> FileSystemError | None:
    """The :class:`FileSystemError` to report for ``exc``, or None when it is not a fault
    of the file system (and stays what it is)."""
    described = describe_os_error(exc)
    if described is None:
        return None
    return FileSystemError(
        f"{doing} {described}",
        hint="Free space, or make the folder writable (or choose another with "
        "--models-dir / --logs-dir), and run again; the production model is unchanged.",
    )


class OutputPathError(ConfigError):
    """``--output-json`` names a file of the model store; nothing is written there (exit 3)."""


EXIT_SUCCESS = 0
EXIT_FAILURE = MptrainError.exit_code
EXIT_VALIDATION_FAILED = 2
EXIT_CONFIG_ERROR = ConfigError.exit_code
EXIT_INTERRUPTED = Interrupted.exit_code
