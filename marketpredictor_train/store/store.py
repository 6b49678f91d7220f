"""The model store: versioned model files, the production model, its history, pruning.

Layout of the models folder::

    models/
    ├── prod_model.bin              # a byte-for-byte copy of the production version
    ├── model_20250127_143022.bin   # every saved version (UTC save time)
    ├── model_20250120_020015.bin
    ├── history.jsonl               # append-only promotion history
    ├── .promotion-intent.json      # only while production changes (or after a kill then)
    └── .mptrain.lock               # inter-process lock (may stay behind; harmless)

Production is identified by the manifest inside ``prod_model.bin``, never by a pointer file,
so the manual ``cp models/model_X.bin models/prod_model.bin`` leaves a store that every
command reads correctly. Changes of production happen under the store lock: the history
record is noted first, ``prod_model.bin`` is replaced atomically, then the record is
appended. Whoever next holds the lock completes a change a killed run left half-recorded,
and removes the temp files of writers that died.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from marketpredictor_train.errors import (
    ConfigError,
    ModelFileError,
    StoreError,
    describe_os_error,
)
from marketpredictor_train.fileio import (
    atomic_write_bytes,
    fsync_dir,
    temp_file_is_orphaned,
    write_temp_file,
)
from marketpredictor_train.store.history import (
    HISTORY_FILE_NAME,
    INTENT_FILE_NAME,
    Action,
    PromotionRecord,
    RegisteredVersion,
    append_record,
    read_intent,
    read_records,
    write_intent,
)
from marketpredictor_train.store.lock import DEFAULT_LOCK_TIMEOUT_S, StoreLock
from marketpredictor_train.store.modelfile import (
    ModelFile,
    decode_model_file,
    encode_model_file,
    read_bounded,
    read_model_file,
)
from marketpredictor_train.store.names import (
    PROD_FILE_NAME,
    REPORTS_DIR_NAME,
    is_version,
    list_version_names,
    model_file_name,
)

log = structlog.get_logger(__name__)

# Same-second saves get suffixes _2, _3, ...; this many in one second means a runaway loop.
_MAX_SAME_SECOND = 999
# Temp files older than this are leftovers of a crashed write, safe for prune to remove.
_STALE_TEMP_S = 3600.0
_HINT_MAX_VERSIONS = 20
# A reader that finds a change of production half-recorded waits this long for the lock
# to complete it (a live promotion holds the lock for milliseconds).
_RECOVER_LOCK_TIMEOUT_S = 5.0
# Test seam: the process kills itself (SIGKILL) at the named point, e.g.
# MPTRAIN_TEST_CRASH_AT=after-production-replaced, to prove what the next run recovers.
CRASH_AT_ENV = "MPTRAIN_TEST_CRASH_AT"


@dataclass(frozen=True, slots=True)
class StoredModel:
    """One model in the store. For :meth:`ModelStore.production`, ``path`` is
    ``prod_model.bin``; for every other lookup it is the versioned ``model_<version>.bin``."""

    version: str
    path: Path
    created_at: str | None
    manifest: dict[str, Any] = field(repr=False, hash=False)
    is_production: bool
    size_bytes: int

    @property
    def model_type(self) -> str | None:
        value = self.manifest.get("model_type")
        return str(value) if value is not None else None

    @property
    def metrics(self) -> dict[str, Any]:
        value = self.manifest.get("metrics")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def gate_passed(self) -> bool | None:
        """Whether the model passed the promotion gate when it was trained (None: not
        recorded, e.g. a model saved before mptrain recorded decisions)."""
        decision = self.manifest.get("decision")
        passed = decision.get("passed") if isinstance(decision, dict) else None
        return passed if isinstance(passed, bool) else None

    @property
    def gate_reason(self) -> str | None:
        decision = self.manifest.get("decision")
        reason = decision.get("reason") if isinstance(decision, dict) else None
        return str(reason) if reason is not None else None

    def summary(self) -> dict[str, Any]:
        """A JSON-safe description for listings and ``--json`` output."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "model_type": self.model_type,
            "metrics": self.metrics,
            "decision": {"passed": self.gate_passed, "reason": self.gate_reason},
            "is_production": self.is_production,
            "size_bytes": self.size_bytes,
            "path": str(self.path),
            "run_id": self.manifest.get("run_id"),
            "data_window": self.manifest.get("data_window"),
            "label": self.manifest.get("label"),
            "feature_spec_hash": self.manifest.get("feature_spec_hash"),
        }


@dataclass(frozen=True, slots=True)
class UnreadableFile:
    """A file in the store that could not be read as a model, and why."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class StoreScan:
    """Everything in the store at one moment; production problems are reported, not raised."""

    models: tuple[StoredModel, ...]
    production: StoredModel | None
    production_error: str | None
    unreadable: tuple[UnreadableFile, ...]


class _Unchecked:
    """Marker type: promote without checking which model is production."""


UNCHECKED = _Unchecked()


class ProductionChanged(StoreError):
    """Production is no longer the model a run compared itself with."""


class ModelStore:
    """Versioned model files in one folder, with a production model and its history."""

    def __init__(self, models_dir: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.models_dir = Path(models_dir)
        self.prod_path = self.models_dir / PROD_FILE_NAME
        self.history_path = self.models_dir / HISTORY_FILE_NAME
        self.intent_path = self.models_dir / INTENT_FILE_NAME
        self._lock = StoreLock(self.models_dir, lock_timeout)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.models_dir)!r})"

    # ----------------------------------------------------------------- reading

    def version_names(self) -> list[str]:
        """Versions present, newest first, from the folder listing alone (cheap)."""
        return list_version_names(self.models_dir)

    def path_of(self, version: str) -> Path:
        """The file of an existing version; :class:`ConfigError` if it is malformed or unknown."""
        if not is_version(version):
            raise ConfigError(
                f"Malformed model version {version!r}: expected YYYYMMDD_HHMMSS "
                "(UTC save time, e.g. 20250120_020015)",
                hint=self._available_hint(),
            )
        path = self.models_dir / model_file_name(version)
        if not path.is_file():
            raise ConfigError(
                f"Unknown model version {version!r}: no {path}",
                hint=self._available_hint(),
            )
        return path

    def get(self, version: str) -> StoredModel:
        """One version, verified; :class:`ConfigError` if unknown, :class:`ModelFileError`
        if its file is damaged."""
        path = self.path_of(version)
        model = self._read_version(path, version)
        return _with_production(model, self._production_version_or_none())

    def load(self, version: str) -> ModelFile:
        """The verified manifest and payload of one version."""
        path = self.path_of(version)
        return self._read_checked(path, version)

    def production(self) -> StoredModel | None:
        """The production model as identified by the manifest inside ``prod_model.bin``;
        None when there is none yet; :class:`ModelFileError` when it is damaged."""
        loaded = self._load_production_file()
        if loaded is None:
            return None
        model_file, size = loaded
        version = model_file.manifest["version"]
        return StoredModel(
            version=version,
            path=self.prod_path,
            created_at=_created_at(model_file.manifest),
            manifest=model_file.manifest,
            is_production=True,
            size_bytes=size,
        )

    def load_production(self) -> ModelFile | None:
        """The verified production model, or None when nothing has been promoted yet."""
        loaded = self._load_production_file()
        return loaded[0] if loaded is not None else None

    def scan(self) -> StoreScan:
        """Every readable version (newest first), the production model, and what could not
        be read. Damaged files are reported here rather than stopping the listing."""
        try:
            production = self.production()
            production_error = None
        except ModelFileError as exc:
            production, production_error = None, str(exc)
            log.warning("Production model is unreadable", path=str(self.prod_path), error=str(exc))
        prod_version = production.version if production else None
        models: list[StoredModel] = []
        unreadable: list[UnreadableFile] = []
        for version in self.version_names():
            path = self.models_dir / model_file_name(version)
            try:
                model = self._read_version(path, version)
            except ModelFileError as exc:
                unreadable.append(UnreadableFile(path, str(exc)))
                log.warning("Skipping unreadable model file", path=str(path), error=str(exc))
                continue
            models.append(_with_production(model, prod_version))
        return StoreScan(tuple(models), production, production_error, tuple(unreadable))

    def versions(self) -> list[StoredModel]:
        """Every readable version, newest first (unreadable files are logged and skipped)."""
        return list(self.scan().models)

    def history(self) -> list[PromotionRecord]:
        """The promotion history, oldest first (with the record of a change a killed run
        made but did not record, completed first when the lock can be had)."""
        if self.intent_path.exists():
            try:
                with self._lock.hold(timeout=_RECOVER_LOCK_TIMEOUT_S):
                    self._complete_interrupted_change()
            except (OSError, StoreError) as exc:  # e.g. a read-only store: read as it is
                log.warning(
                    "Could not complete an interrupted change of production",
                    path=str(self.intent_path),
                    error=str(exc),
                )
        return read_records(self.history_path)

    # ----------------------------------------------------------------- changing

    def check_writable(self) -> None:
        """:class:`StoreError` now, naming the folder and the cause, if files cannot be
        created in the store (read-only, immutable, no permission, a file in its place):
        better before a long training run than after it."""
        with _file_system_faults("Cannot write to the model store", "nothing was changed"):
            self.models_dir.mkdir(parents=True, exist_ok=True)
            try:
                write_temp_file(self.models_dir, ".write-check", b"").unlink()
            except OSError as exc:  # name the folder, not the probe file
                raise OSError(exc.errno, exc.strerror, str(self.models_dir)) from exc

    def save(self, manifest: dict[str, Any], payload: bytes) -> StoredModel:
        """Save a new version named after the current UTC time; never overwrites one.

        Sets ``manifest["version"]`` and ``manifest["created_at"]``. The file is complete
        before its name appears: it is written to a temp file and hard-linked to its final
        name, and the link fails if another process took that name first, in which case the
        next suffix is tried.
        """
        with _file_system_faults("Cannot save the model", "nothing was saved"):
            return self._save(manifest, payload)

    def _save(self, manifest: dict[str, Any], payload: bytes) -> StoredModel:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        base = now.strftime("%Y%m%d_%H%M%S")
        created_at = now.isoformat(timespec="seconds")
        for n in range(1, _MAX_SAME_SECOND + 1):
            version = base if n == 1 else f"{base}_{n}"
            target = self.models_dir / model_file_name(version)
            if target.exists():
                continue
            content = {**manifest, "version": version, "created_at": created_at}
            data = encode_model_file(content, payload)
            if self._claim(target, data):
                manifest["version"] = version
                manifest["created_at"] = created_at
                log.info("Model saved", version=version, path=str(target))
                return StoredModel(
                    version=version,
                    path=target,
                    created_at=created_at,
                    manifest=decode_model_file(data, source=str(target), verifier=None).manifest,
                    is_production=False,
                    size_bytes=len(data),
                )
        raise StoreError(f"No free version name for {base} in {self.models_dir}")

    def promote(
        self,
        version: str,
        *,
        reason: str,
        forced: bool = False,
        expected_production: str | None | _Unchecked = UNCHECKED,
        registered: RegisteredVersion | None = None,
    ) -> PromotionRecord:
        """Make ``version`` production (atomically, under the lock) and record it, with
        ``registered``, its version in the MLflow Model Registry, when known.

        With ``expected_production`` (a version, or None for 'no production model') the
        promotion happens only if production is still that model: a run that compared
        itself with one champion must not replace another that a concurrent run promoted
        meanwhile. Otherwise :class:`ProductionChanged` is raised and nothing changes."""
        with (
            _file_system_faults(f"Cannot promote {version}", "production is unchanged"),
            self._locked(),
        ):
            if expected_production is not UNCHECKED:
                current = self._production_version_or_none()
                if current != expected_production:
                    raise ProductionChanged(
                        f"The production model changed during this run (compared with "
                        f"{expected_production or 'none'}, now {current or 'none'})",
                        hint="Run again to compare the new model with the current one.",
                    )
            return self._make_production(
                version, "promote", reason=reason, forced=forced, registered=registered
            )

    def rollback(
        self,
        version: str | None = None,
        *,
        reason: str = "rollback",
        registered: RegisteredVersion | None = None,
    ) -> PromotionRecord | None:
        """Make ``version`` production again; with None, the production model before the
        current one according to the history (see :meth:`previous_production`). None when
        ``version`` is production already and the history says so: nothing is changed or
        recorded."""
        with (
            _file_system_faults(
                f"Cannot roll back to {version or 'the previous model'}", "production is unchanged"
            ),
            self._locked(),
        ):
            if version is None:
                version = self._previous_production()
            history = self.history()
            recorded = bool(history) and history[-1].to_version == version
            if recorded and self._production_version_or_none() == version:
                log.info("Already production; nothing changed", version=version)
                return None
            return self._make_production(
                version, "rollback", reason=reason, forced=False, registered=registered
            )

    def previous_production(self) -> str:
        """The version a rollback without a version returns to: the most recent production
        model in the history that is not the current one (:class:`ConfigError` if none)."""
        return self._previous_production()

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` non-production versions (and their reports in
        ``reports/<version>/``); returns the removed versions, newest first. Production is
        never deleted; if ``prod_model.bin`` cannot be read, nothing is deleted
        (:class:`ModelFileError`)."""
        if keep < 0:
            raise ConfigError(f"Cannot keep {keep} versions: give 0 or more")
        with _file_system_faults("Cannot prune", "production is unchanged"), self._locked():
            production = self.production()
            candidates = [
                v for v in self.version_names() if production is None or v != production.version
            ]
            removed = candidates[keep:]
            for version in removed:
                (self.models_dir / model_file_name(version)).unlink(missing_ok=True)
                # A version's validation reports go with it.
                shutil.rmtree(self.models_dir / REPORTS_DIR_NAME / version, ignore_errors=True)
            self._remove_stale_temp_files()
            if removed:
                fsync_dir(self.models_dir)
        if removed:
            log.info("Pruned model versions", removed=removed, kept=keep)
        return removed

    # ----------------------------------------------------------------- internals

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store lock, first finishing what runs killed earlier left behind."""
        with self._lock.hold():
            self._complete_interrupted_change()
            self._remove_stale_temp_files()
            yield

    def _complete_interrupted_change(self) -> None:
        """Under the lock: a promotion note left behind means a run died while changing
        production. If production is the noted version, the change happened and its
        record (who, when, why, from which version) is appended unless already there;
        otherwise production was never replaced and the note is dropped."""
        intent = read_intent(self.intent_path)
        if intent is not None:
            history = read_records(self.history_path)
            if self._production_version_or_none() != intent.to_version:
                log.warning(
                    "An interrupted change of production never took effect; nothing to record",
                    to_version=intent.to_version,
                )
            elif not history or history[-1] != intent:
                append_record(self.history_path, intent)
                log.warning(
                    "Recorded a change of production that an interrupted run made",
                    action=intent.action,
                    from_version=intent.from_version,
                    to_version=intent.to_version,
                    when=intent.timestamp,
                    user=intent.user,
                )
        if self.intent_path.exists():
            self.intent_path.unlink(missing_ok=True)
            fsync_dir(self.models_dir)

    def _claim(self, target: Path, data: bytes) -> bool:
        """Give ``data`` the name ``target`` unless it is taken; True when it was free."""
        tmp = write_temp_file(self.models_dir, target.name, data)
        try:
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
            except OSError:
                # No hard links here (some network or FUSE filesystems): fall back to a
                # check-and-rename serialised by the store lock.
                with self._lock.hold():
                    if target.exists():
                        return False
                    os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.models_dir)
        return True

    def _make_production(
        self,
        version: str,
        action: Action,
        *,
        reason: str,
        forced: bool,
        registered: RegisteredVersion | None = None,
    ) -> PromotionRecord:
        # Caller holds the lock. Verify the bytes we copy, not just the file we named.
        path = self.path_of(version)
        data = _read_bytes(path)
        self._check_version(decode_model_file(data, source=str(path)), path, version)
        previous = self._production_version_or_none()
        record = PromotionRecord.new(
            action,
            from_version=previous,
            to_version=version,
            reason=reason,
            forced=forced,
            registered=registered,
        )
        write_intent(self.intent_path, record)
        try:
            atomic_write_bytes(self.prod_path, data)
        except BaseException:
            self.intent_path.unlink(missing_ok=True)  # production was never replaced
            raise
        _crash_point("after-production-replaced")
        try:
            append_record(self.history_path, record)
        except OSError as exc:
            described = describe_os_error(exc) or str(exc)
            raise StoreError(
                f"Production is now {version}, but its record could not be added to "
                f"{self.history_path}: {described}",
                hint="The next mptrain command that changes the store adds the record "
                f"(from {self.intent_path.name}) once the file can be written.",
            ) from exc
        self.intent_path.unlink(missing_ok=True)
        log.info(
            "Production model changed",
            action=action,
            from_version=previous,
            to_version=version,
            reason=reason,
            forced=forced,
        )
        return record

    def _previous_production(self) -> str:
        """The most recent production model in the history that is not the current one.

        Rolling back twice therefore toggles between the two latest production models, and
        after a manual ``cp`` it returns to the last one mptrain promoted."""
        current = self._production_version_or_none()
        for record in reversed(self.history()):
            if record.to_version != current:
                if not (self.models_dir / model_file_name(record.to_version)).is_file():
                    raise ConfigError(
                        f"The previous production model {record.to_version} is no longer "
                        f"in {self.models_dir} (pruned or deleted)",
                        hint="Choose a version with --version. " + self._available_hint(),
                    )
                return record.to_version
        raise ConfigError(
            "There is no previous production model to roll back to "
            f"(the promotion history in {self.history_path} has none)",
            hint="Choose a version with --version. " + self._available_hint(),
        )

    def _load_production_file(self) -> tuple[ModelFile, int] | None:
        try:
            data = read_bounded(self.prod_path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModelFileError(f"Cannot read {self.prod_path}: {exc.strerror or exc}") from exc
        model_file = decode_model_file(data, source=str(self.prod_path))
        version = model_file.manifest.get("version")
        if not is_version(version):
            raise ModelFileError(
                f"{self.prod_path} does not name a valid version in its manifest ({version!r})",
                hint="Roll back to a known version with `mptrain rollback --version V`.",
            )
        return model_file, len(data)

    def _production_version_or_none(self) -> str | None:
        """The current production version, tolerating a damaged prod_model.bin (which a
        promotion or rollback is exactly the way to repair)."""
        try:
            loaded = self._load_production_file()
        except ModelFileError as exc:
            log.warning("Production model is unreadable", path=str(self.prod_path), error=str(exc))
            return None
        return loaded[0].manifest["version"] if loaded else None

    def _read_version(self, path: Path, version: str) -> StoredModel:
        data = _read_bytes(path)
        model_file = decode_model_file(data, source=str(path))
        self._check_version(model_file, path, version)
        return StoredModel(
            version=version,
            path=path,
            created_at=_created_at(model_file.manifest),
            manifest=model_file.manifest,
            is_production=False,
            size_bytes=len(data),
        )

    def _read_checked(self, path: Path, version: str) -> ModelFile:
        model_file = read_model_file(path)
        self._check_version(model_file, path, version)
        return model_file

    @staticmethod
    def _check_version(model_file: ModelFile, path: Path, version: str) -> None:
        inside = model_file.manifest.get("version")
        if inside != version:
            raise ModelFileError(
                f"{path} holds version {inside!r}, not {version!r} (renamed or copied over?)"
            )

    def _available_hint(self) -> str:
        names = self.version_names()
        if not names:
            return f"No model versions in {self.models_dir} yet; run `mptrain train` first."
        shown = ", ".join(names[:_HINT_MAX_VERSIONS])
        more = len(names) - _HINT_MAX_VERSIONS
        if more > 0:
            shown += f" ... and {more} older (see `mptrain models-list`)"
        return f"Available versions (newest first): {shown}"

    def _remove_stale_temp_files(self) -> None:
        """Remove temp files, in the store and in its report folders, whose writer died
        (see :func:`temp_file_is_orphaned`) or that are over an hour old; a live writer's
        file, here or on another machine, stays."""
        cutoff = time.time() - _STALE_TEMP_S
        removed = False
        reports = self.models_dir / REPORTS_DIR_NAME
        for entry in [*self.models_dir.glob(".*.tmp"), *reports.glob("*/.*.tmp")]:
            try:
                if temp_file_is_orphaned(entry) or entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed = True
            except OSError:
                continue
        if removed:
            log.info("Removed temp files left by interrupted runs", folder=str(self.models_dir))


@contextmanager
def _file_system_faults(doing: str, outcome: str) -> Iterator[None]:
    """A fault of the file system (disk full, read-only, immutable...) as a one-line
    :class:`StoreError` naming the file and the cause; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        described = describe_os_error(exc)
        if described is None:
            raise
        raise StoreError(
            f"{doing}: {described}; {outcome}",
            hint="Free space or make the models folder writable (or choose another with "
            "--models-dir), then run again.",
        ) from exc


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _with_production(model: StoredModel, prod_version: str | None) -> StoredModel:
    if prod_version is None or model.version != prod_version:
        return model
    return replace(model, is_production=True)


def _created_at(manifest: dict[str, Any]) -> str | None:
    value = manifest.get("created_at")
    return str(value) if value is not None else None


def _read_bytes(path: Path) -> bytes:
    try:
        return read_bounded(path)
    except FileNotFoundError as exc:
        raise ModelFileError(f"Model file not found: {path} (deleted meanwhile?)") from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path}: {exc.strerror or exc}") from exc
