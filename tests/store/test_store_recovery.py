"""What the next holder of the store lock repairs after a killed run: a change of production
made but not yet recorded (completed from its note), and temp files whose writer died.

The kill is real: the process sends itself SIGKILL at the named point through the
``MPTRAIN_TEST_CRASH_AT`` seam, right after ``prod_model.bin`` was replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import REPO_ROOT

from marketpredictor_train.fileio import _temp_prefix, temp_file_is_orphaned
from marketpredictor_train.store import ModelStore, PromotionRecord
from marketpredictor_train.store.history import write_intent


def mptrain(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real CLI in its own process (so that it can be killed for real)."""
    env = {k: v for k, v in os.environ.items() if k != "MPTRAIN_TEST_CRASH_AT"}
    env.update({"PYTHONPATH": str(REPO_ROOT), "MPTRAIN_MLFLOW": "false", "NO_COLOR": "1"})
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=Path.cwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def two_promoted(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="first")
    return a, b


@pytest.mark.slow
def test_a_kill_right_after_production_was_replaced_is_recorded_by_the_next_command(
    store, two_promoted
):
    a, b = two_promoted
    started = time.time()
    killed = mptrain(
        "rollback",
        "--version",
        b.version,
        "--reason",
        "a misbehaves",
        env_extra={"MPTRAIN_TEST_CRASH_AT": "after-production-replaced"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The kill landed between the two writes: production changed, the history did not.
    assert store.prod_path.exists()
    assert [r.to_version for r in json_history(store)] == [a.version]
    assert store.intent_path.exists()

    listing = mptrain("models-list", "--json")
    assert listing.returncode == 0, listing.stderr
    history = json.loads(listing.stdout)["history"]
    assert [h["to_version"] for h in history] == [a.version, b.version]
    recovered = history[-1]
    assert (recovered["action"], recovered["from_version"], recovered["reason"]) == (
        "rollback",
        a.version,
        "a misbehaves",
    )
    assert recovered["user"] == store.history()[0].user and recovered["host"]
    # When: the moment of the killed run, not of the command that completed the record.
    when = PromotionRecord.from_dict(recovered).timestamp
    assert abs(_epoch(when) - started) < 60
    assert not store.intent_path.exists()

    # The next change sees the right predecessor and the record is not written twice.
    again = mptrain("rollback", "--reason", "back")
    assert again.returncode == 0, again.stderr
    records = store.history()
    assert [(r.from_version, r.to_version) for r in records] == [
        (None, a.version),
        (a.version, b.version),
        (b.version, a.version),
    ]


def test_a_note_of_a_change_that_never_replaced_production_is_dropped(store, two_promoted):
    a, b = two_promoted
    never = PromotionRecord.new("promote", from_version=a.version, to_version=b.version, reason="x")
    write_intent(store.intent_path, never)
    store.promote(a.version, reason="again")
    assert [(r.to_version, r.reason) for r in store.history()] == [
        (a.version, "first"),
        (a.version, "again"),
    ]
    assert not store.intent_path.exists()


def test_a_note_whose_record_was_already_appended_is_not_recorded_twice(store, two_promoted):
    a, _ = two_promoted
    write_intent(store.intent_path, store.history()[-1])  # killed after the append
    assert len(store.history()) == 1
    assert not store.intent_path.exists()


@pytest.mark.slow  # real writer processes
def test_the_next_lock_holder_removes_temp_files_of_dead_writers_only(store, two_promoted):
    a, b = two_promoted
    models = store.models_dir
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_text)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = _temp_prefix("x").split(".")[2].split("-")[1]
        orphan = models / f".prod_model.bin.{dead_pid}-{host}.abcd1234.tmp"
        (models / "reports" / a.version).mkdir(parents=True, exist_ok=True)
        report_orphan = models / "reports" / a.version / f".report.html.{dead_pid}-{host}.q1.tmp"
        writing = models / f".model_{b.version}.bin.{live.pid}-{host}.efgh5678.tmp"
        elsewhere = models / f".prod_model.bin.{dead_pid}-00000000.ijkl9012.tmp"
        unnamed = models / ".prod_model.bin.mnop3456.tmp"
        for path in (orphan, report_orphan, writing, elsewhere, unnamed):
            path.write_bytes(b"half written")
        assert temp_file_is_orphaned(orphan) and not temp_file_is_orphaned(writing)

        result = mptrain("rollback", "--version", b.version)
        assert result.returncode == 0, result.stderr
        left = sorted(p.name for p in models.glob(".*.tmp"))
        # The live writer's file stays; so do files of another machine or of an unknown
        # writer until they are an hour old.
        assert left == sorted(p.name for p in (writing, elsewhere, unnamed))
        assert not report_orphan.exists()  # a report folder's too
    finally:
        live.kill()
        live.wait()


_text = {"capture_output": True, "text": True, "check": True}


def json_history(store: ModelStore) -> list[PromotionRecord]:
    """The history file as it is on disk (``store.history()`` would complete it)."""
    lines = store.history_path.read_text().splitlines()
    return [PromotionRecord.from_dict(json.loads(line)) for line in lines if line.strip()]


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp).timestamp()
