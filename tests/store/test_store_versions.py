"""ModelStore in one process: versions, promotion, history, rollback, identification of
production from its manifest, damaged files, and pruning."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_helpers import make_manifest, payload_for

import marketpredictor_train.store.store as store_module
from marketpredictor_train.errors import ConfigError, ModelFileError
from marketpredictor_train.store import VERSION_PATTERN, ModelStore, read_model_file


class _FrozenClock(datetime):
    """datetime whose now() is always the same second, as when two runs collide."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return datetime(2025, 1, 20, 2, 0, 15, tzinfo=UTC)


# ----------------------------------------------------------------------------- saving


def test_save_names_the_version_after_utc_now_and_records_it_in_the_manifest(store):
    manifest = make_manifest()
    before = datetime.now(UTC).replace(microsecond=0)
    saved = store.save(manifest, payload_for(1))
    assert VERSION_PATTERN.fullmatch(saved.version)
    stamped = datetime.strptime(saved.version, "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    assert before <= stamped <= datetime.now(UTC)
    assert saved.path == store.models_dir / f"model_{saved.version}.bin"
    assert manifest["version"] == saved.version and manifest["created_at"] == saved.created_at
    on_disk = read_model_file(saved.path)
    assert on_disk.manifest["version"] == saved.version
    assert on_disk.payload == payload_for(1)
    assert not saved.is_production


def test_saves_in_the_same_second_get_distinct_ordered_versions(store, monkeypatch):
    monkeypatch.setattr(store_module, "datetime", _FrozenClock)
    versions = [store.save(make_manifest(), payload_for(i)).version for i in range(12)]
    assert versions[:3] == ["20250120_020015", "20250120_020015_2", "20250120_020015_3"]
    assert len(set(versions)) == 12
    assert store.version_names() == versions[::-1]  # newest first, _10 after _9
    for i, version in enumerate(versions):
        assert store.load(version).payload == payload_for(i)


def test_same_second_saves_stay_distinct_without_hard_links(store, monkeypatch):
    """Filesystems without hard links fall back to a check-and-rename under the lock."""
    monkeypatch.setattr(store_module, "datetime", _FrozenClock)

    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(store_module.os, "link", no_links)
    a = store.save(make_manifest(), payload_for(1))
    b = store.save(make_manifest(), payload_for(2))
    assert (a.version, b.version) == ("20250120_020015", "20250120_020015_2")
    assert store.load(a.version).payload == payload_for(1)
    assert sorted(p.name for p in store.models_dir.iterdir() if p.name.endswith(".tmp")) == []


def test_save_never_overwrites_an_existing_version(store, monkeypatch):
    monkeypatch.setattr(store_module, "datetime", _FrozenClock)
    first = store.save(make_manifest(), payload_for(1))
    first_bytes = first.path.read_bytes()
    store.save(make_manifest(), payload_for(2))
    assert first.path.read_bytes() == first_bytes


def test_version_pattern_accepts_suffixes_and_rejects_paths():
    for good in ("20250120_020015", "20250120_020015_2", "20250120_020015_10"):
        assert VERSION_PATTERN.fullmatch(good)
    for bad in ("../x", "20250120_020015/../../x", "20250120", "model_20250120_020015", ""):
        assert not VERSION_PATTERN.fullmatch(bad)


# ------------------------------------------------------------------ promotion, history


def test_promote_copies_the_version_bytes_and_appends_history(store, save_models):
    a, b = save_models(2)
    assert store.production() is None and store.history() == []

    first = store.promote(a.version, reason="passed the gate")
    assert store.prod_path.read_bytes() == a.path.read_bytes()
    second = store.promote(b.version, reason="operator insisted", forced=True)

    assert store.production().version == b.version
    assert store.production().path == store.prod_path
    assert [(r.action, r.from_version, r.to_version, r.forced) for r in store.history()] == [
        ("promote", None, a.version, False),
        ("promote", a.version, b.version, True),
    ]
    assert store.history() == [first, second]
    assert second.reason == "operator insisted" and second.user and second.host
    assert datetime.fromisoformat(second.timestamp).tzinfo is not None
    lines = store.history_path.read_text().splitlines()
    assert [json.loads(line)["to_version"] for line in lines] == [a.version, b.version]


def test_versions_are_newest_first_with_production_marked(store, save_models):
    a, b, c = save_models(3)
    store.promote(b.version, reason="r")
    listed = store.versions()
    assert [m.version for m in listed] == [c.version, b.version, a.version]
    assert [m.is_production for m in listed] == [False, True, False]
    assert listed[1].model_type == "xgb" and listed[1].metrics["accuracy"] == 0.51
    assert store.get(b.version).is_production and not store.get(a.version).is_production


def test_rollback_to_a_version_and_back_to_the_previous_one(store, save_models):
    a, b, c = save_models(3)
    store.promote(a.version, reason="r")
    store.promote(b.version, reason="r")
    store.promote(c.version, reason="r")

    rec = store.rollback(a.version, reason="c misbehaves")
    assert (rec.action, rec.from_version, rec.to_version) == ("rollback", c.version, a.version)
    assert store.production().version == a.version
    assert store.load_production().payload == payload_for(0)

    back = store.rollback()  # the production model before the current one
    assert (back.from_version, back.to_version) == (a.version, c.version)
    again = store.rollback()  # rolling back twice toggles between the two latest
    assert again.to_version == a.version
    assert len(store.history()) == 6


def test_rollback_with_no_previous_production_is_a_config_error(store, save_models):
    (a,) = save_models(1)
    with pytest.raises(ConfigError, match="no previous production model"):
        store.rollback()
    store.promote(a.version, reason="r")
    with pytest.raises(ConfigError, match="no previous production model") as err:
        store.rollback()
    assert a.version in str(err.value)


@pytest.mark.parametrize("version", ["../x", "20250120", "model_20250120_020015", "x/../../etc"])
def test_malformed_versions_are_refused_naming_the_available_ones(store, save_models, version):
    a, b = save_models(2)
    with pytest.raises(ConfigError, match="Malformed model version") as err:
        store.rollback(version)
    assert f"{b.version}, {a.version}" in str(err.value)
    assert store.production() is None and store.history() == []


def test_unknown_version_is_refused_naming_the_available_ones(store, save_models):
    (a,) = save_models(1)
    with pytest.raises(ConfigError, match="Unknown model version '20000101_000000'") as err:
        store.promote("20000101_000000", reason="r")
    assert a.version in str(err.value)
    with pytest.raises(ConfigError, match="run `mptrain train` first"):
        ModelStore(store.models_dir / "empty").get("20000101_000000")


def test_manual_copy_is_identified_from_the_manifest_inside_prod_model(store, save_models):
    a, b, c = save_models(3)
    store.promote(a.version, reason="r")
    store.promote(b.version, reason="r")
    shutil.copyfile(c.path, store.prod_path)  # the seed's manual rollback

    assert store.production().version == c.version
    assert [m.version for m in store.versions() if m.is_production] == [c.version]
    # The next change records where production really was, and a plain rollback returns
    # to the last production model mptrain promoted.
    rec = store.rollback()
    assert (rec.from_version, rec.to_version) == (c.version, b.version)


def test_damaged_production_is_reported_and_repaired_by_rollback(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    store.promote(b.version, reason="r")
    store.prod_path.write_bytes(store.prod_path.read_bytes()[:-7])

    with pytest.raises(ModelFileError, match="prod_model.bin is truncated"):
        store.production()
    scan = store.scan()
    assert scan.production is None and "truncated" in scan.production_error
    assert [m.version for m in scan.models] == [b.version, a.version]

    rec = store.rollback(b.version, reason="repair")
    assert rec.from_version is None  # unknown: the file could not be read
    assert store.production().version == b.version


def test_promoting_a_tampered_version_is_refused_and_production_is_untouched(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    data = bytearray(b.path.read_bytes())
    data[40] ^= 0xFF
    b.path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        store.promote(b.version, reason="r")
    assert store.production().version == a.version and len(store.history()) == 1


def test_listing_skips_and_reports_unreadable_files(store, save_models):
    a, b, c = save_models(3)
    b.path.write_bytes(b"garbage")
    shutil.copyfile(a.path, store.models_dir / "model_20000101_000000.bin")  # renamed copy
    scan = store.scan()
    assert [m.version for m in scan.models] == [c.version, a.version]
    reasons = {u.path.name: u.reason for u in scan.unreadable}
    assert "not an mptrain model file" in reasons[b.path.name]
    assert "holds version" in reasons["model_20000101_000000.bin"]
    assert [m.version for m in store.versions()] == [c.version, a.version]


def test_a_torn_history_line_is_skipped_and_the_next_record_starts_a_new_line(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    with open(store.history_path, "a") as fh:
        fh.write('{"timestamp": "2025-01-20T02:00:15+00:00", "act')  # crash mid-append
    store.promote(b.version, reason="r")
    assert [r.to_version for r in store.history()] == [a.version, b.version]


# ----------------------------------------------------------------------------- pruning


def test_prune_keeps_the_newest_non_production_versions_and_never_production(store, save_models):
    models = save_models(5)
    oldest = models[0]
    store.promote(oldest.version, reason="r")
    removed = store.prune(2)
    assert removed == [models[2].version, models[1].version]
    assert store.version_names() == [models[4].version, models[3].version, oldest.version]
    assert store.production().version == oldest.version

    assert store.prune(0) == [models[4].version, models[3].version]
    assert store.version_names() == [oldest.version]
    assert store.prune(0) == []


def test_prune_refuses_when_production_cannot_be_identified(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    store.prod_path.write_bytes(b"broken")
    with pytest.raises(ModelFileError):
        store.prune(0)
    assert store.version_names() == [b.version, a.version]


def test_prune_rejects_a_negative_count(store):
    with pytest.raises(ConfigError):
        store.prune(-1)


def test_prune_removes_temp_files_left_by_crashed_writes_once_stale(store, save_models):
    save_models(1)
    stale = store.models_dir / ".prod_model.bin.abc123.tmp"
    fresh = store.models_dir / ".model_20250120_020015.bin.def456.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    store.prune(5)
    assert not stale.exists() and fresh.exists()


def test_store_module_does_not_import_heavy_libraries():
    code = (
        "import sys; import marketpredictor_train.store as s; s.ModelStore; s.PromotionRecord; "
        "heavy = {'xgboost', 'sklearn', 'mlflow', 'polars', 'pandas', 'lightgbm', 'optuna'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    from store_helpers import run_python

    out = run_python(code, cwd=Path.cwd(), check=True).stdout.strip()
    assert out == "[]"


def test_prune_removes_the_reports_of_pruned_versions_only(store, save_models):
    a, b, c = save_models(3)
    store.promote(a.version, reason="r")
    for model in (a, b, c):
        report = store.models_dir / "reports" / model.version / "report.md"
        report.parent.mkdir(parents=True)
        report.write_text("# report")
    assert store.prune(1) == [b.version]
    remaining = sorted(p.name for p in (store.models_dir / "reports").iterdir())
    assert remaining == sorted([a.version, c.version])
