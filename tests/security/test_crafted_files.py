"""Crafted model files -- valid SHA-256, altered content -- never crash the process nor
end in a traceback: each is refused with the file's name and what is wrong (exit 1), and
the store stays repairable with rollback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from crafted import corpus, fitted, huge_header, manifest_for, sealed

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.store import ModelStore, read_model_file

HERE = Path(__file__).resolve().parent
VERSION = "20250120_020015"


def _load_all(folder: Path, timeout: int = 900) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "load_corpus.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = next((line["start"] for line in reversed(lines) if "start" in line), None)
    assert proc.returncode == 0, (
        f"loader died with {proc.returncode} on {last}: {proc.stderr[-2000:]}"
    )
    return [line for line in lines if "file" in line]


def _write(folder: Path, files: list[tuple[str, bytes]], prefix: str) -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    names = {}
    for i, (label, data) in enumerate(files):
        name = f"{prefix}_{i:04d}.bin"
        (folder / name).write_bytes(data)
        names[name] = label
    return names


@pytest.mark.parametrize(
    "type_name",
    [
        pytest.param("xgb", marks=pytest.mark.slow),
        pytest.param("lgb", marks=pytest.mark.slow),
        pytest.param("rf", marks=pytest.mark.slow),
    ],
)
def test_crafted_corpus_is_refused_without_crash_or_traceback(
    tmp_path: Path, type_name: str
) -> None:
    folder = tmp_path / "corpus"
    # The forest needs no child process, so its loop is quick enough for the fast subset
    # with fewer flips; its structural attacks are all there.
    flips_n, cuts_n = (20, 6) if type_name == "rf" else (60, 12)
    names = _write(folder, corpus(type_name, VERSION, flips_n=flips_n, cuts_n=cuts_n), type_name)
    results = _load_all(folder)
    assert len(results) == len(names)
    errors = [(names[r["file"]], r["message"]) for r in results if r["outcome"] == "error"]
    assert not errors, errors[:5]
    bad = [names[r["file"]] for r in results if r["outcome"] == "bad predictions"]
    assert not bad
    refused = [r for r in results if r["outcome"] == "refused"]
    assert all(r["file"] in r["message"] for r in refused), refused[:3]
    # Every structural attack and manifest edit is refused; only flips that leave a valid
    # model (a changed split value or leaf weight) may load.
    must_refuse = {
        label
        for label in names.values()
        if not label.startswith("flip@") and not label.startswith("cut@")
    }
    refused_labels = {names[r["file"]] for r in refused}
    assert must_refuse <= refused_labels, sorted(must_refuse - refused_labels)
    assert len(refused) > len(results) // 3


@pytest.mark.parametrize(
    ("line", "crafted"),
    [
        (b"[min_gain_to_split: 0]", b"[min_gain_to_split; 0]"),  # crashed 1 process in 3
        (b"[boosting: gbdt]", b"[boosting: gb\x9adt]"),
        (b"[objective: binary]", b"[objective: binary"),
    ],
)
def test_a_malformed_lightgbm_parameter_line_is_refused_before_lightgbm_reads_it(
    line: bytes, crafted: bytes
) -> None:
    """LightGBM re-reads the parameters section when asked for the loaded parameters, and
    a line without its ": " made it read past the text (a crash or not, by the memory
    behind it): such a line is refused before any LightGBM call, the same every time."""
    from marketpredictor_train.models.lgb import LightGBMModelType

    payload = fitted("lgb").to_bytes()
    assert line in payload
    with pytest.raises(ModelFileError, match="malformed parameter line"):
        LightGBMModelType.from_bytes(payload.replace(line, crafted, 1))
    assert LightGBMModelType.from_bytes(payload).to_bytes() == payload  # the real one loads


@pytest.mark.slow  # a probe helper process per library
@pytest.mark.parametrize("type_name", ["xgb", "lgb"])
def test_the_probe_hands_back_the_model_as_its_library_wrote_it(type_name: str) -> None:
    """This process loads what the child's library wrote back from the model it read,
    never the file's own bytes; for an honest payload that is the same model."""
    import numpy as np
    from crafted import N_FEATURES, SMALL_PARAMS

    from marketpredictor_train.models.isolation import probe_payload
    from marketpredictor_train.models.registry import get_model_type

    model = fitted(type_name)
    payload = model.to_bytes()
    written = probe_payload(type_name, payload, SMALL_PARAMS[type_name], n_features=N_FEATURES)
    assert written and written is not payload
    rows = np.random.default_rng(5).normal(0, 2, size=(40, N_FEATURES))
    again = get_model_type(type_name).from_bytes(written, SMALL_PARAMS[type_name])
    np.testing.assert_array_equal(again.predict_proba(rows), model.predict_proba(rows))
    # the probe of the same payload is remembered, bytes and all
    assert (
        probe_payload(type_name, payload, SMALL_PARAMS[type_name], n_features=N_FEATURES) == written
    )


def test_huge_header_length_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    huge_header(path)
    assert path.stat().st_size > 3 * 1024**3 and path.stat().st_blocks * 512 < 1024**2
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError, match="over the .*-byte limit"):
        read_model_file(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


# ------------------------------------------------------------------ through the CLI


def _mptrain(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def store_with_crafted(_isolated: Path) -> tuple[ModelStore, str, str]:
    """A store whose production is a good rf model, plus a newer crafted version (a forest
    whose first tree's root points outside the tree)."""
    from crafted import crafted_forests

    store = ModelStore(_isolated / "models")
    payload = fitted("rf").to_bytes()
    good = store.save(manifest_for("rf", "x"), payload)
    store.promote(good.version, reason="test")
    bad = store.save(manifest_for("rf", "x"), payload)
    crafted_payload = dict(crafted_forests(payload))["rf left child 10**6"]
    path = store.models_dir / f"model_{bad.version}.bin"
    path.write_bytes(sealed(manifest_for("rf", bad.version), crafted_payload))
    return store, good.version, bad.version


def _clean_failure(result: subprocess.CompletedProcess[str], code: int = 1) -> None:
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_cli_refuses_a_crafted_version_and_rollback_still_repairs(
    _isolated: Path, store_with_crafted
) -> None:
    store, good, bad = store_with_crafted
    validate = _mptrain("validate", "--version", bad, "--source", "sample", cwd=_isolated)
    _clean_failure(validate)
    assert f"model_{bad}.bin" in validate.stderr and "out of range" in validate.stderr
    listing = _mptrain("models-list", "--json", cwd=_isolated)
    assert listing.returncode == 0, listing.stderr
    # Production (a good model) replaced by the crafted one by hand, then repaired.
    store.prod_path.write_bytes((store.models_dir / f"model_{bad}.bin").read_bytes())
    predict = _mptrain("predict", "--source", "sample", cwd=_isolated)
    _clean_failure(predict)
    rollback = _mptrain("rollback", "--version", good, cwd=_isolated)
    assert rollback.returncode == 0, rollback.stderr
    assert store.production().version == good


@pytest.mark.slow
def test_rollback_works_beside_a_huge_crafted_file(_isolated: Path) -> None:
    store = ModelStore(_isolated / "models")
    payload = fitted("rf").to_bytes()
    first = store.save(manifest_for("rf", "x"), payload)
    second = store.save(manifest_for("rf", "x"), payload)
    store.promote(first.version, reason="t")
    store.promote(second.version, reason="t")
    huge_header(store.prod_path)  # production is now a 3 GiB crafted file
    listing = _mptrain("models-list", cwd=_isolated)
    assert listing.returncode == 0 and "over the" in listing.stderr, listing.stderr
    rollback = _mptrain("rollback", "--version", first.version, cwd=_isolated)
    assert rollback.returncode == 0, rollback.stderr
    assert store.production().version == first.version


@pytest.mark.slow
def test_train_beside_a_crafted_production_warns_and_decides_by_the_gate(
    _isolated: Path, store_with_crafted
) -> None:
    """train loads production to compare: a crafted one is named in a warning, never a
    crash; the thresholds decide, as for a production that cannot be scored."""
    from crafted import crafted_forests

    store, _good, bad = store_with_crafted
    payload = dict(crafted_forests(fitted("rf").to_bytes()))["rf left child 10**6"]
    # Trained long before the sample's backtest, so that train does load it to compare.
    window = {"train_start": "2004-01-02", "train_end": "2005-12-30"}
    store.prod_path.write_bytes(sealed(manifest_for("rf", bad, data_window=window), payload))
    result = _mptrain(
        "train", "--source", "sample", "--tickers", "AAPL,MSFT", "--period", "3y",
        "--output-json", "result.json", cwd=_isolated,
    )  # fmt: skip
    assert result.returncode in (0, 2), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    document = json.loads((_isolated / "result.json").read_text())
    warnings = document["warnings"]
    assert any("could not be scored" in w and "out of range" in w for w in warnings), warnings
