"""The model file container: round trip, and refusal of truncated, tampered or foreign files."""

from __future__ import annotations

import json
import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from store_helpers import make_manifest, payload_for

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.store import ModelFile, read_model_file, write_model_file
from marketpredictor_train.store.modelfile import CHECKSUM_SIZE, HEADER_SIZE, MAGIC


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def model_path(files: Path) -> Path:
    path = files / "model_20250120_020015.bin"
    write_model_file(path, make_manifest(version="20250120_020015"), payload_for(3))
    return path


def test_round_trip_keeps_manifest_and_payload_exactly(model_path: Path) -> None:
    loaded = read_model_file(model_path)
    assert isinstance(loaded, ModelFile)
    assert loaded.manifest == make_manifest(version="20250120_020015")
    assert loaded.payload == payload_for(3)


def test_layout_is_magic_version_lengths_manifest_payload_checksum(model_path: Path) -> None:
    data = model_path.read_bytes()
    magic, fmt, manifest_len, payload_len = struct.unpack_from(">8sHIQ", data)
    assert (magic, fmt) == (MAGIC, 1)
    assert len(data) == HEADER_SIZE + manifest_len + payload_len + CHECKSUM_SIZE
    manifest = json.loads(data[HEADER_SIZE : HEADER_SIZE + manifest_len])
    assert manifest["version"] == "20250120_020015"


def test_payload_bit_flip_is_refused_naming_the_file(model_path: Path) -> None:
    data = bytearray(model_path.read_bytes())
    data[-CHECKSUM_SIZE - 10] ^= 0x01
    model_path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256") as err:
        read_model_file(model_path)
    assert str(model_path) in str(err.value)


def test_edited_manifest_is_refused_even_when_still_valid_json(model_path: Path) -> None:
    data = model_path.read_bytes()
    # Same length, still valid JSON: only the checksum can tell.
    edited = data.replace(b'"accuracy": 0.54', b'"accuracy": 0.99')
    assert edited != data
    model_path.write_bytes(edited)
    with pytest.raises(ModelFileError, match="tampered"):
        read_model_file(model_path)


@pytest.mark.parametrize("keep", [0, 4, 8, 15, HEADER_SIZE, HEADER_SIZE + 40, -CHECKSUM_SIZE, -1])
def test_truncated_file_is_refused_as_truncated(model_path: Path, keep: int) -> None:
    data = model_path.read_bytes()
    model_path.write_bytes(data[:keep])
    with pytest.raises(ModelFileError, match="truncated") as err:
        read_model_file(model_path)
    assert str(model_path) in str(err.value)


def test_extra_bytes_after_the_checksum_are_refused(model_path: Path) -> None:
    model_path.write_bytes(model_path.read_bytes() + b"junk")
    with pytest.raises(ModelFileError, match="unexpected bytes"):
        read_model_file(model_path)


@pytest.mark.parametrize(
    "content",
    [
        pickle.dumps({"model": "anything"}),
        b'{"version": "20250120_020015"}',
        b"\x00" * 100,
    ],
    ids=["pickle", "json", "zeros"],
)
def test_foreign_file_is_refused_and_never_unpickled(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "prod_model.bin"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not an mptrain model file"):
        read_model_file(path)


def test_newer_format_version_asks_for_an_upgrade(model_path: Path) -> None:
    data = bytearray(model_path.read_bytes())
    struct.pack_into(">H", data, len(MAGIC), 3)  # 1 is unsigned, 2 signed
    model_path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="format 3") as err:
        read_model_file(model_path)
    assert "Upgrade mptrain" in str(err.value)


def test_missing_file_is_a_model_file_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        read_model_file(tmp_path / "nope.bin")


def test_non_finite_metrics_are_stored_as_null_so_the_manifest_stays_standard_json(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.bin"
    write_model_file(path, {"metrics": {"roc_auc": math.nan, "f1": math.inf, "ok": 0.5}}, b"x")
    assert read_model_file(path).manifest["metrics"] == {"roc_auc": None, "f1": None, "ok": 0.5}


def test_numpy_scalars_become_plain_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    write_model_file(path, {"n": np.int64(7), "acc": np.float32(0.5)}, b"x")
    assert read_model_file(path).manifest == {"n": 7, "acc": 0.5}


def test_unserialisable_manifest_is_a_clear_error(files: Path) -> None:
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        write_model_file(files / "m.bin", {"when": object()}, b"x")
    assert list(files.iterdir()) == []


def test_write_replaces_atomically_and_leaves_no_temp_files(model_path: Path) -> None:
    write_model_file(model_path, {"version": "other"}, b"new")
    assert read_model_file(model_path).payload == b"new"
    assert [p.name for p in model_path.parent.iterdir()] == [model_path.name]
    assert model_path.stat().st_mode & 0o777 == 0o644
