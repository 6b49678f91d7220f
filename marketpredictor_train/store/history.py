"""The promotion history: an append-only JSON-lines file, one record per change of production.

Records are only appended (under the store lock) and each append is fsynced. A line torn by
a crash mid-write is skipped with a warning when reading, and the next append starts on a
fresh line so it cannot be glued to the torn one.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

log = structlog.get_logger(__name__)

HISTORY_FILE_NAME = "history.jsonl"
# The record of a change of production that has begun: written before prod_model.bin is
# replaced and removed once the record is in the history, so a run killed in between
# leaves what the next holder of the store lock needs to complete it.
INTENT_FILE_NAME = ".promotion-intent.json"
Action = Literal["promote", "rollback"]


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version of a registered model in the MLflow Model Registry (``models:/name/N``)."""

    registered_model: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.registered_model}/{self.version}"


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    """One change of the production model: who made which version production, when and why;
    and the MLflow model version it is in the registry, when that was known at the time."""

    timestamp: str  # UTC, ISO 8601
    action: Action
    from_version: str | None
    to_version: str
    reason: str
    forced: bool
    user: str
    host: str
    registered_model: str | None = None
    mlflow_model_version: str | None = None

    @classmethod
    def new(
        cls,
        action: Action,
        *,
        from_version: str | None,
        to_version: str,
        reason: str,
        forced: bool = False,
        registered: RegisteredVersion | None = None,
    ) -> PromotionRecord:
        return cls(
            timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
            action=action,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            forced=forced,
            user=_current_user(),
            host=socket.gethostname(),
            registered_model=registered.registered_model if registered else None,
            mlflow_model_version=registered.version if registered else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromotionRecord:
        return cls(
            timestamp=str(data["timestamp"]),
            action=data["action"],
            from_version=data.get("from_version"),
            to_version=str(data["to_version"]),
            reason=str(data.get("reason", "")),
            forced=bool(data.get("forced", False)),
            user=str(data.get("user", "")),
            host=str(data.get("host", "")),
            registered_model=_text_or_none(data.get("registered_model")),
            mlflow_model_version=_text_or_none(data.get("mlflow_model_version")),
        )


def append_record(path: Path, record: PromotionRecord) -> None:
    """Append one record durably. The caller holds the store lock."""
    line = json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"
    with open(path, "a+b") as fh:
        # A crash mid-append leaves a line without its newline; start on a fresh line.
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = "\n" + line
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def write_intent(path: Path, record: PromotionRecord) -> None:
    """Durably note the change ``record`` describes before making it. The caller holds the
    store lock."""
    from marketpredictor_train.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True))


def read_intent(path: Path) -> PromotionRecord | None:
    """The change an interrupted run had begun, or None when there is none (an unreadable
    note is reported and treated as none: it was written atomically, so it is not ours)."""
    try:
        return PromotionRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("Ignoring an unreadable promotion note", path=str(path), error=str(exc))
        return None


def read_records(path: Path) -> list[PromotionRecord]:
    """Every readable record, oldest first; unreadable lines are skipped with a warning."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records: list[PromotionRecord] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            records.append(PromotionRecord.from_dict(data))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "Skipping unreadable history line", path=str(path), line=number, error=str(exc)
            )
    return records


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name, e.g. an anonymous container uid
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
