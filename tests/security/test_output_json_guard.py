"""--output-json never overwrites a file of the model store: refused with exit 3 before
anything runs, production and history untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_helpers import make_manifest, payload_for  # noqa: E402

from marketpredictor_train.errors import OutputPathError  # noqa: E402
from marketpredictor_train.store import ModelStore  # noqa: E402
from marketpredictor_train.store.names import check_result_path  # noqa: E402


@pytest.fixture
def store_with_production(_isolated: Path) -> ModelStore:
    store = ModelStore(_isolated / "models")
    first = store.save(make_manifest(accuracy=0.51), payload_for(1))
    store.save(make_manifest(accuracy=0.52), payload_for(2))
    store.promote(first.version, reason="test")
    report = store.models_dir / "reports" / first.version / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    (store.models_dir / "best_hyperparameters.json").write_text("{}")
    return store


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_validate_output_json_on_prod_model_is_refused_and_production_intact(
    cli, store_with_production: ModelStore
) -> None:
    before = _digests(store_with_production.models_dir)
    result = cli("validate", "--version", "1", "--output-json", "models/prod_model.bin")
    assert result.exit_code == 3, result.output
    assert "Refusing to write the result to models/prod_model.bin" in result.output
    assert "Traceback" not in result.output
    assert _digests(store_with_production.models_dir) == before
    assert (
        store_with_production.production().version == store_with_production.history()[-1].to_version
    )


@pytest.mark.parametrize(
    "name",
    [
        "version",
        "prod_model.bin",
        "history.jsonl",
        ".mptrain.lock",
        "report",
        "best_hyperparameters.json",
        ".model_x.bin.1234.tmp",
    ],
)
def test_every_store_file_is_refused(cli, store_with_production: ModelStore, name: str) -> None:
    models = store_with_production.models_dir
    target = {
        "version": models / f"model_{store_with_production.version_names()[0]}.bin",
        "report": models / "reports" / store_with_production.version_names()[-1] / "report.json",
    }.get(name, models / name)
    before = _digests(models)
    result = cli("validate", "--output-json", str(target))
    assert result.exit_code == 3, result.output
    assert "Refusing to write the result" in result.output
    assert _digests(models) == before


@pytest.mark.parametrize("command", ["train", "validate", "predict", "optimize"])
def test_every_command_refuses_before_running(
    cli, store_with_production: ModelStore, command: str
) -> None:
    before = _digests(store_with_production.models_dir)
    result = cli(command, "--source", "sample", "--output-json", "models/prod_model.bin")
    assert result.exit_code == 3, result.output
    assert _digests(store_with_production.models_dir) == before
    assert not Path("logs").exists()  # refused before logging was even set up


def test_store_elsewhere_is_guarded_through_models_dir(cli, _isolated: Path) -> None:
    store = ModelStore(_isolated / "elsewhere")
    saved = store.save(make_manifest(), payload_for(1))
    store.promote(saved.version, reason="test")
    (_isolated / "elsewhere" / ".mptrain.lock").unlink(missing_ok=True)
    (_isolated / "elsewhere" / "history.jsonl").rename(_isolated / "history.bak")
    # No marker left beside the file: only --models-dir tells it is the store's.
    target = _isolated / "elsewhere" / "history.jsonl"
    result = cli("validate", "--models-dir", str(store.models_dir), "--output-json", str(target))
    assert result.exit_code == 3, result.output
    assert not target.exists()


def test_a_copied_model_file_outside_any_store_is_not_overwritten(
    cli, store_with_production: ModelStore, _isolated: Path
) -> None:
    copy = _isolated / "backup.bin"
    shutil.copy(store_with_production.prod_path, copy)
    data = copy.read_bytes()
    result = cli("validate", "--version", "1", "--output-json", str(copy))
    assert result.exit_code == 3
    assert copy.read_bytes() == data


def test_an_ordinary_path_still_gets_the_failure_document(
    cli, store_with_production: ModelStore, _isolated: Path
) -> None:
    result = cli("validate", "--version", "1", "--output-json", "result.json")
    assert result.exit_code == 3
    document = json.loads((_isolated / "result.json").read_text())
    assert (
        document["status"] == "failed" and "Malformed model version" in document["error"]["message"]
    )


def test_check_result_path_library_level(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("model_20250101_000000.bin", "prod_model.bin", "reports/x/y.md", "optuna.db"):
        with pytest.raises(OutputPathError):
            check_result_path(models / name, models)
    # Outside the store, or a folder inside it the store does not own: allowed.
    check_result_path(tmp_path / "result.json", models)
    check_result_path(models / "exports" / "result.json", models)
    check_result_path(models / "result.json", models)
