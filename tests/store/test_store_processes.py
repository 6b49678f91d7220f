"""The store across real processes: concurrent promotions, crashes at the worst moments,
and the lock's timeout. Each worker is a separate Python interpreter."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from store_helpers import REPO_ROOT, payload_for, run_python

from marketpredictor_train.errors import ModelFileError, StoreError
from marketpredictor_train.store import ModelStore, read_model_file

_PROMOTER = """
import sys, time
from pathlib import Path
from marketpredictor_train.store import ModelStore
models, version, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = ModelStore(Path(models))
Path(go.parent / f"ready-{version}").touch()
while not go.exists():
    time.sleep(0.005)
for i in range(rounds):
    store.promote(version, reason=f"worker {version} round {i}")
"""


@pytest.mark.slow  # two promoting processes, 40 rounds each, read back throughout
def test_concurrent_promotions_never_leave_a_missing_partial_or_mixed_production(
    store, save_models, tmp_path
):
    base, a, b = save_models(3)
    payloads = {base.version: payload_for(0), a.version: payload_for(1), b.version: payload_for(2)}
    store.promote(base.version, reason="start")
    rounds = 40
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _PROMOTER, str(store.models_dir), v, str(rounds), str(go)],
            cwd=Path.cwd(),
            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for v in (a.version, b.version)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{v}").exists() for v in (a.version, b.version)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.01)
    go.touch()

    # Read production while both workers replace it: every read must be a whole,
    # verified file holding exactly one version's bytes.
    reads = 0
    while any(w.poll() is None for w in workers):
        model = read_model_file(store.prod_path)
        assert model.payload == payloads[model.manifest["version"]]
        reads += 1
    for w in workers:
        assert w.wait() == 0, w.stderr.read().decode()
    assert reads > 0

    history = store.history()
    assert len(history) == 1 + 2 * rounds
    assert sum(r.to_version == a.version for r in history) == rounds
    assert sum(r.to_version == b.version for r in history) == rounds
    # Serialised by the lock: each promotion saw the one before it as production.
    for earlier, later in zip(history, history[1:], strict=False):
        assert later.from_version == earlier.to_version
    assert store.production().version == history[-1].to_version
    assert [p.name for p in store.models_dir.glob(".*.tmp")] == []


def test_crash_between_saving_and_promoting_leaves_production_and_history_intact(
    store, save_models
):
    (old,) = save_models(1)
    store.promote(old.version, reason="start")
    prod_bytes, history_bytes = store.prod_path.read_bytes(), store.history_path.read_bytes()

    crashed = run_python(
        textwrap.dedent(f"""
            import os
            from pathlib import Path
            from marketpredictor_train.store import ModelStore
            store = ModelStore(Path({str(store.models_dir)!r}))
            saved = store.save({{"model_type": "xgb"}}, b"new model")
            print(saved.version, flush=True)
            os._exit(1)  # dies before promoting
        """),
        cwd=Path.cwd(),
    )
    assert crashed.returncode == 1
    new_version = crashed.stdout.strip().splitlines()[-1]  # after any log lines

    assert store.prod_path.read_bytes() == prod_bytes
    assert store.history_path.read_bytes() == history_bytes
    assert [m.version for m in store.versions()] == [new_version, old.version]
    # The next run carries on normally.
    store.promote(new_version, reason="next run")
    assert store.production().version == new_version


def test_crash_after_replacing_production_before_recording_it(store, save_models):
    """The lock dies with the process; production is whole; the next run proceeds."""
    a, b = save_models(2)
    store.promote(a.version, reason="start")
    crashed = run_python(
        textwrap.dedent(f"""
            import os
            from pathlib import Path
            import marketpredictor_train.store.store as m
            m.append_record = lambda *args: os._exit(1)  # die between the two writes
            m.ModelStore(Path({str(store.models_dir)!r})).promote({b.version!r}, reason="x")
        """),
        cwd=Path.cwd(),
    )
    assert crashed.returncode == 1, crashed.stderr
    assert store.production().version == b.version
    # The next reader completes the record from the note the killed run left.
    assert [(r.from_version, r.to_version, r.reason) for r in store.history()] == [
        (None, a.version, "start"),
        (a.version, b.version, "x"),
    ]

    quick = ModelStore(store.models_dir, lock_timeout=2)
    rec = quick.rollback(reason="after crash")
    assert (rec.from_version, rec.to_version) == (b.version, a.version)


def test_crash_while_writing_production_leaves_the_old_one_in_place(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="start")
    crashed = run_python(
        textwrap.dedent(f"""
            import os
            from pathlib import Path
            import marketpredictor_train.fileio as fileio
            real_replace = fileio.os.replace
            def replace(src, dst):  # die before the rename of production
                if str(dst).endswith("prod_model.bin"):
                    os._exit(1)
                real_replace(src, dst)
            fileio.os.replace = replace
            from marketpredictor_train.store import ModelStore
            ModelStore(Path({str(store.models_dir)!r})).promote({b.version!r}, reason="x")
        """),
        cwd=Path.cwd(),
    )
    assert crashed.returncode == 1, crashed.stderr
    assert store.production().version == a.version
    assert store.load_production().payload == payload_for(0)
    assert [m.version for m in store.versions()] == [b.version, a.version]
    assert len(list(store.models_dir.glob(".prod_model.bin.*.tmp"))) == 1  # hidden leftover


def test_a_lock_held_too_long_is_a_clear_store_error(store, save_models, tmp_path):
    (a,) = save_models(1)
    ready = tmp_path / "holding"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import time
                from pathlib import Path
                from marketpredictor_train.store.lock import StoreLock
                with StoreLock(Path({str(store.models_dir)!r})).hold():
                    Path({str(ready)!r}).touch()
                    time.sleep(60)
            """),
        ],
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.01)
        impatient = ModelStore(store.models_dir, lock_timeout=0.3)
        with pytest.raises(StoreError, match="held the model store lock") as err:
            impatient.promote(a.version, reason="r")
        assert "released automatically" in str(err.value)
        assert not store.prod_path.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel released the dead holder's lock: no stale lock to clean up.
    ModelStore(store.models_dir, lock_timeout=2).promote(a.version, reason="r")
    assert store.production().version == a.version


def test_a_truncated_production_file_is_refused_by_a_fresh_process(store, save_models):
    (a,) = save_models(1)
    store.promote(a.version, reason="r")
    store.prod_path.write_bytes(store.prod_path.read_bytes()[:100])
    out = run_python(
        "from pathlib import Path\n"
        "from marketpredictor_train.store import ModelStore\n"
        f"ModelStore(Path({str(store.models_dir)!r})).load_production()\n",
        cwd=Path.cwd(),
    )
    assert out.returncode == 1
    assert ModelFileError.__name__ in out.stderr and "truncated" in out.stderr
