"""Credentials never leave the process: the one place that masks them in text before it
is shown or written (console, ``logs/training.log``, JSON documents, MLflow tags).

Masked are the password of every ``scheme://user:password@host`` URL in a text (a
tracking URI, a study storage URL, an exception quoting either), any private key in PEM,
and the values of the environment variables that hold secrets (tokens, passwords, a
signing key given as text).
Cheap to import: no third-party module.
"""

from __future__ import annotations

import os
import re

MASK = "***"
# scheme://user:password@ -- the password runs to the last "@" before the host (a
# password with an unescaped "@" is still masked whole) and never spans a "/" or a space.
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s/'\"]*)@"
)
# A private key in PEM, wherever it is quoted.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS: tuple[str, ...] = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "DATABRICKS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "MPTRAIN_SIGNING_KEY",
)
# Shorter values are too likely to be ordinary words to be replaced everywhere.
_MIN_SECRET_LEN = 6


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (the user name is kept)."""
    return _URL_CREDENTIALS.sub(rf"\g<head>:{MASK}@", url)


def redact(text: str) -> str:
    """``text`` with every URL password and every secret environment value masked."""
    if not text:
        return text
    masked = _PRIVATE_KEY.sub(f"<private key {MASK}>", mask_url(text))
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if name == "MPTRAIN_SIGNING_KEY" and not value.startswith("-----BEGIN"):
            continue  # the path of the key file, not the key: worth showing in its errors
        if value and len(value) >= _MIN_SECRET_LEN and value in masked:
            masked = masked.replace(value, MASK)
    return masked


def redact_value(value: object) -> object:
    """``value`` with every string in it redacted (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def describe_error(exc: BaseException) -> str:
    """An exception's text, safe to show: credentials masked, the type name when empty."""
    return redact(str(exc).strip() or type(exc).__name__)


class RedactingFilter:
    """A logging filter that masks a record's message and traceback text, for the handlers
    other libraries attach to their own loggers (MLflow's, when the user lets it configure
    its logging), which print records before or beside mptrain's handlers."""

    def filter(self, record: object) -> bool:
        import logging

        if not isinstance(record, logging.LogRecord):
            return True
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def mask_library_handlers() -> None:
    """Put a :class:`RedactingFilter` on every handler of every logger that has handlers of
    its own (root's handlers are mptrain's, which mask already). Idempotent."""
    import logging

    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
