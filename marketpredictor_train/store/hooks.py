"""The post-promotion command: what an operator configures to run after production changes
(the seed's ``make restart``), e.g. ``post_promote_command = "make restart"``.

It runs through the shell in the working directory, after the promotion or rollback is
complete and the store lock released, with these variables added to its environment:

- ``MPTRAIN_VERSION``: the version that is production now
- ``MPTRAIN_PREVIOUS_VERSION``: the one it replaced ("" if none)
- ``MPTRAIN_ACTION``: ``promote`` or ``rollback``
- ``MPTRAIN_MODEL_PATH``: absolute path of ``prod_model.bin``
- ``MPTRAIN_MODELS_DIR``: absolute path of the models folder

A failure (non-zero exit, or running past ``post_promote_timeout_s``) is reported and never
undoes the promotion: production has changed either way, and the operator must know that
the service did not pick it up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import structlog

from marketpredictor_train.errors import HookError
from marketpredictor_train.store.names import PROD_FILE_NAME

if TYPE_CHECKING:
    from marketpredictor_train.config import Settings
    from marketpredictor_train.store.history import PromotionRecord

log = structlog.get_logger(__name__)

_OUTPUT_TAIL_CHARS = 4000
_POSIX = os.name == "posix"


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """What the post-promotion command did. ``ok`` is True when it succeeded or when none
    is configured (``ran`` is then False)."""

    command: str | None
    ran: bool
    ok: bool
    returncode: int | None
    timed_out: bool
    duration_s: float
    output: str  # the last few thousand characters of its stdout and stderr
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def raise_for_failure(self) -> None:
        """Raise :class:`PostPromoteHookFailed` if the command ran and failed."""
        if not self.ok:
            raise PostPromoteHookFailed(self)


class PostPromoteHookFailed(HookError):
    """The post-promotion command failed; production has changed regardless (exit 1).

    ``result`` carries the operation's own result (e.g. a RollbackResult) when the
    operation attaches it, so a caller can still report what was done."""

    def __init__(self, outcome: HookOutcome, result: Any = None) -> None:
        super().__init__(
            outcome.message,
            hint="The promotion was not undone. Fix the command, then run it by hand "
            "(or roll back with `mptrain rollback`).",
        )
        self.outcome = outcome
        self.result = result


def hook_environment(settings: Settings, record: PromotionRecord) -> dict[str, str]:
    """The variables the post-promotion command receives on top of mptrain's environment."""
    models_dir = settings.models_dir.expanduser().resolve()
    return {
        "MPTRAIN_VERSION": record.to_version,
        "MPTRAIN_PREVIOUS_VERSION": record.from_version or "",
        "MPTRAIN_ACTION": record.action,
        "MPTRAIN_MODEL_PATH": str(models_dir / PROD_FILE_NAME),
        "MPTRAIN_MODELS_DIR": str(models_dir),
    }


def run_post_promote_hook(settings: Settings, record: PromotionRecord) -> HookOutcome:
    """Run ``settings.post_promote_command`` for ``record``; never raises for the command's
    own failure (see :meth:`HookOutcome.raise_for_failure`)."""
    command = settings.post_promote_command
    if not command or not command.strip():
        return HookOutcome(None, False, True, None, False, 0.0, "", "")
    env = {**os.environ, **hook_environment(settings, record)}
    timeout = settings.post_promote_timeout_s
    log.info("Running post-promotion command", command=command, version=record.to_version)
    started = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # Its own process group, so a timeout stops whatever the shell started too.
            start_new_session=_POSIX,
        )
    except OSError as exc:
        duration = time.monotonic() - started
        message = (
            f"Post-promotion command {command!r} could not be started: {exc}; "
            f"production is {record.to_version}"
        )
        log.error(message)
        return HookOutcome(command, True, False, None, False, round(duration, 3), "", message)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        output, _ = proc.communicate()
    duration = round(time.monotonic() - started, 3)
    output = (output or "")[-_OUTPUT_TAIL_CHARS:]
    for line in output.splitlines():
        log.info("post-promotion command output", line=line)
    returncode = None if timed_out else proc.returncode
    if returncode == 0:
        message = f"Post-promotion command {command!r} succeeded"
        log.info(message, duration_s=duration)
        return HookOutcome(command, True, True, 0, False, duration, output, message)
    why = f"timed out after {timeout:g}s" if timed_out else f"failed with exit code {returncode}"
    last = output.strip().splitlines()[-1:] if output.strip() else []
    message = (
        f"Post-promotion command {command!r} {why}"
        + (f" ({last[0].strip()})" if last else "")
        + f"; production is {record.to_version} ({record.action} not undone)"
    )
    log.error(message, duration_s=duration)
    return HookOutcome(command, True, False, returncode, timed_out, duration, output, message)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
