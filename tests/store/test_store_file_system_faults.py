"""Faults of the file system under the model store, through the real CLI: a full disk while
saving or promoting, a read-only store, an immutable folder, a file where the models
folder should be. Each is one line naming the path and the cause (exit 1; 3 for the
misconfigured folder), production and history unchanged, no traceback, and the
--output-json document still written when its own folder is writable.

A full disk is a real small tmpfs where the tests may mount one (root), and otherwise the
file size limit (RLIMIT_FSIZE, EFBIG) of a child process; read-only is a read-only bind
mount for root (chmod does not stop root) and chmod for everyone else."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import REPO_ROOT, make_manifest

from marketpredictor_train.store import ModelStore

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
BIG = 200_000  # bytes of payload per model: a few of them fill the small disk


@pytest.fixture(autouse=True)
def _untracked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPTRAIN_MLFLOW", "false")  # the store is under test, not MLflow


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where`` (skips the test where none can be mounted)."""
    where.mkdir(parents=True, exist_ok=True)
    if (
        not IS_ROOT
        or shutil.which("mount") is None
        or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    ):
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE variant runs instead")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only: a read-only bind mount for root, chmod otherwise."""
    if IS_ROOT:
        if not (
            _mount("--bind", str(folder), str(folder))
            and _mount("-o", "remount,bind,ro", str(folder))
        ):
            subprocess.run(["umount", "-l", str(folder)], check=False)
            pytest.skip("root, and cannot bind-mount read-only here (chmod does not stop root)")
        try:
            yield
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def fill(models_dir: Path, n: int) -> list[str]:
    """``n`` saved versions with big payloads, the first promoted; their versions."""
    store = ModelStore(models_dir)
    versions = [
        store.save(make_manifest(accuracy=0.5 + i / 100), os.urandom(BIG)).version for i in range(n)
    ]
    store.promote(versions[0], reason="start")
    return versions


def snapshot(models_dir: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(models_dir.iterdir())
        if p.is_file() and p.name != ".mptrain.lock"
    }


def assert_one_line_error(output: str, *needles: str) -> None:
    flat = " ".join(output.split())
    assert "Traceback" not in output, output
    assert "Error: " in flat, output
    for needle in needles:
        assert needle in flat, output


def mptrain(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPTRAIN_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "MPTRAIN_MLFLOW": "false", "NO_COLOR": "1"})

    def limit() -> None:  # the child's file size limit; Python ignores SIGXFSZ: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=Path.cwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if fsize is not None else None,
        check=False,
    )


# ------------------------------------------------------------------ disk full


def test_a_full_disk_during_a_promotion_leaves_production_and_history(cli, tmp_path):
    with small_disk(tmp_path / "disk", "700k") as disk:
        models = disk / "models"
        a, b = fill(models, 2)  # 3 x 200k used: the copy to prod_model.bin cannot fit
        before = snapshot(models)
        result = cli("rollback", "--version", b, "--models-dir", models, "--json")
        assert result.exit_code == 1, result.output
        assert_one_line_error(
            result.stderr,
            f"Cannot roll back to {b}",
            "prod_model.bin",
            "no space left",
            "disk full",
        )
        assert json.loads(result.stdout)["error"]["type"] == "StoreError"
        assert snapshot(models) == before
        assert not list(models.glob(".*.tmp")) and not (models / ".promotion-intent.json").exists()


@pytest.mark.slow  # one real train on the sample data (~8 s)
def test_a_full_disk_during_the_save_of_train_is_one_line_and_the_json_is_written(tmp_path):
    with small_disk(tmp_path / "disk", "100k") as disk:
        result = mptrain(
            "train", "--source", "sample", "--force", "-q",
            "--models-dir", str(disk / "models"), "--output-json", "out.json",
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert_one_line_error(result.stderr, "Cannot save the model", "no space left")
        doc = json.loads(Path("out.json").read_text())
        assert doc["status"] == "failed" and doc["exit_code"] == 1
        assert "disk full" in doc["error"]["message"]
        assert not list((disk / "models").glob("model_*")) and not list(disk.rglob("*.tmp"))


@pytest.mark.slow  # one real train on the sample data (~8 s)
def test_a_full_disk_during_the_promotion_of_train_keeps_the_saved_version(tmp_path):
    with small_disk(tmp_path / "disk", "500k") as disk:  # one model file fits, not two
        models = disk / "models"
        result = mptrain(
            "train", "--source", "sample", "--force", "-q",
            "--models-dir", str(models), "--output-json", "out.json",
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert_one_line_error(result.stderr, "Cannot promote", "prod_model.bin", "disk full")
        doc = json.loads(Path("out.json").read_text())
        assert doc["exit_code"] == 1 and doc["error"]["type"] == "StoreError"
        assert len(list(models.glob("model_*.bin"))) == 1  # saved, not promoted
        assert not (models / "prod_model.bin").exists()
        assert not (models / "history.jsonl").exists()
        assert not (models / ".promotion-intent.json").exists()


@pytest.mark.slow  # one real train on the sample data (~8 s)
def test_a_file_size_limit_during_the_save_of_train_is_one_line_and_the_json_is_written():
    """The same fault without root: writes past RLIMIT_FSIZE fail with EFBIG."""
    result = mptrain(
        "train", "--source", "sample", "--force", "-q", "--output-json", "out.json",
        fsize=100_000,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, "Cannot save the model", "file size limit")
    assert json.loads(Path("out.json").read_text())["exit_code"] == 1
    assert not [p for p in Path("models").iterdir() if p.name.startswith("model_")]


@pytest.mark.slow
def test_a_file_size_limit_during_a_promotion_leaves_production(tmp_path):
    models = Path("models")
    a, b = fill(models, 2)
    before = snapshot(models)
    result = mptrain("rollback", "--version", b, fsize=BIG // 2)
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, "prod_model.bin", "file size limit")
    assert snapshot(models) == before


# ------------------------------------------------------------------ read-only, immutable


def test_a_read_only_store_refuses_a_rollback_in_one_line(cli):
    models = Path("models")
    a, b = fill(models, 2)
    before = snapshot(models)
    with read_only(models):
        result = cli("rollback", "--version", b)
        listing = cli("models-list", "--json")
    assert result.exit_code == 1, result.output
    cause = "read-only file system" if IS_ROOT else "permission denied"
    assert_one_line_error(result.output, f"Cannot roll back to {b}", str(models), cause)
    assert snapshot(models) == before
    assert listing.exit_code == 0, listing.output  # reading a read-only store works


def test_train_on_a_read_only_store_stops_before_training_and_writes_the_json(cli):
    models = Path("models")
    fill(models, 1)
    before = snapshot(models)
    with read_only(models):
        result = cli("train", "--source", "sample", "--output-json", "out.json")
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, "Cannot write to the model store", "models")
    assert "Training started" not in result.output  # refused before the data and the fit
    assert json.loads(Path("out.json").read_text())["exit_code"] == 1
    assert snapshot(models) == before


def test_an_immutable_models_folder_is_one_line_naming_the_cause(cli):
    models = Path("models")
    a, b = fill(models, 2)
    before = snapshot(models)
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(models)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a folder immutable here: {done.stderr.strip()}")
    try:
        result = cli("rollback", "--version", b)
    finally:
        subprocess.run(["chattr", "-i", str(models)], check=True)
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, f"Cannot roll back to {b}", "immutable")
    assert snapshot(models) == before


def test_logs_folder_that_cannot_be_written_is_one_line(cli, tmp_path):
    logs = tmp_path / "ro-logs"
    logs.mkdir()
    with read_only(logs):
        result = cli(
            "train", "--source", "sample", "--dry-run",
            "--logs-dir", logs / "sub", "--output-json", "out.json",
        )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.output, "Cannot write", str(logs / "sub"))
    assert json.loads(Path("out.json").read_text())["error"]["type"] == "FileSystemError"


def test_an_unwritable_output_json_path_keeps_the_error_and_its_exit_code(cli, tmp_path):
    out = tmp_path / "ro-out"
    out.mkdir()
    Path("mptrain.toml").write_text("min_accuracy = 'high'\n")
    with read_only(out):
        result = cli("train", "--source", "sample", "--output-json", out / "doc.json")
    assert result.exit_code == 3, result.output
    assert_one_line_error(result.output, "min_accuracy", "Cannot write the --output-json file")


# ------------------------------------------------------------------ a file, not a folder


@pytest.mark.parametrize("how", ["env", "config file"])
def test_models_dir_naming_a_file_exits_3_naming_it(cli, monkeypatch, how):
    Path("not-a-folder").write_text("x")
    if how == "env":
        monkeypatch.setenv("MPTRAIN_MODELS_DIR", "not-a-folder/models")
    else:
        Path("mptrain.toml").write_text('models_dir = "not-a-folder"\n')
    result = cli("train", "--source", "sample", "--output-json", "out.json")
    assert result.exit_code == 3, result.output
    assert_one_line_error(result.output, "models_dir", "not-a-folder is a file, not a folder")
    assert json.loads(Path("out.json").read_text())["exit_code"] == 3
    listing = cli("models-list")
    assert listing.exit_code == 3 and "not-a-folder is a file" in " ".join(listing.output.split())
