"""The self-describing model file (``.bin``): a manifest and an opaque payload, checksummed.

No pickle: loading a model file never runs code. The layout, all integers big-endian::

    offset  size  field
    0       8     magic            b"MPTRMDL\\x00"
    8       2     format version   uint16, currently 1
    10      4     manifest length  uint32, bytes of the manifest JSON (M)
    14      8     payload length   uint64, bytes of the payload (P)
    22      M     manifest         UTF-8 JSON object (sorted keys, no NaN/Infinity)
    22+M    P     payload          the model's own serialisation (e.g. XGBoost UBJSON)
    22+M+P  32    checksum         SHA-256 of every byte before it

The checksum covers the header and the manifest as well as the payload, so an edited
manifest is detected just like a flipped payload bit. A file is written whole to a temp
file in the same folder, fsynced and renamed over the target, so readers see either the
old file or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.fileio import atomic_write_bytes

MAGIC = b"MPTRMDL\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sHIQ")
HEADER_SIZE = _HEADER.size  # 22
CHECKSUM_SIZE = hashlib.sha256().digest_size  # 32
_MAX_MANIFEST = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A verified model file: its manifest (a JSON object) and its payload bytes."""

    manifest: dict[str, Any]
    payload: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        """SHA-256 of the payload alone (hex), handy for comparing model contents."""
        return hashlib.sha256(self.payload).hexdigest()


def encode_model_file(manifest: dict[str, Any], payload: bytes) -> bytes:
    """The bytes of a model file holding ``manifest`` and ``payload``."""
    if not isinstance(manifest, dict):
        raise ModelFileError(f"A model manifest must be a dict, not {type(manifest).__name__}")
    try:
        manifest_bytes = json.dumps(
            _json_safe(manifest), sort_keys=True, ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"The model manifest is not JSON-serialisable: {exc}") from exc
    if len(manifest_bytes) > _MAX_MANIFEST:
        raise ModelFileError("The model manifest is too large (over 4 GiB)")
    payload = bytes(payload)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(manifest_bytes), len(payload))
    digest = hashlib.sha256()
    for part in (header, manifest_bytes, payload):
        digest.update(part)
    return b"".join((header, manifest_bytes, payload, digest.digest()))


def decode_model_file(data: bytes, *, source: str = "<bytes>") -> ModelFile:
    """Parse and verify the bytes of a model file; ``source`` names it in errors."""
    size = len(data)
    if size < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(data):
            raise ModelFileError(f"{source} is truncated ({size} bytes): not a complete model file")
        raise ModelFileError(
            f"{source} is not an mptrain model file (unknown magic bytes)",
            hint="Only files written by mptrain (models/model_*.bin) can be loaded.",
        )
    if size < HEADER_SIZE + CHECKSUM_SIZE:
        raise ModelFileError(f"{source} is truncated ({size} bytes): the header is incomplete")
    _, fmt, manifest_len, payload_len = _HEADER.unpack_from(data)
    if fmt != FORMAT_VERSION:
        raise ModelFileError(
            f"{source} has model file format {fmt}; this mptrain reads format {FORMAT_VERSION}",
            hint="Upgrade mptrain to load models written by a newer version.",
        )
    expected = HEADER_SIZE + manifest_len + payload_len + CHECKSUM_SIZE
    if size < expected:
        raise ModelFileError(
            f"{source} is truncated: {size} bytes, the header promises {expected}",
            hint="The file was cut short (interrupted copy or full disk); "
            "restore it or roll back to another version.",
        )
    if size > expected:
        raise ModelFileError(
            f"{source} has {size - expected} unexpected bytes after its checksum "
            "(tampered with or corrupted)"
        )
    body_end = expected - CHECKSUM_SIZE
    if hashlib.sha256(data[:body_end]).digest() != data[body_end:]:
        raise ModelFileError(
            f"{source} failed its SHA-256 check: the file was tampered with or corrupted",
            hint="Do not use it; roll back to another version or retrain.",
        )
    manifest_end = HEADER_SIZE + manifest_len
    try:
        manifest = json.loads(data[HEADER_SIZE:manifest_end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{source} has an unreadable manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{source} has a manifest that is not a JSON object")
    return ModelFile(manifest=manifest, payload=data[manifest_end:body_end])


def read_model_file(path: Path) -> ModelFile:
    """Read and verify a model file (magic, format version, lengths, SHA-256).

    Raises :class:`ModelFileError` naming ``path`` if it is missing, truncated, tampered
    with, or not an mptrain model file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFileError(f"Model file not found: {path}") from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path}: {exc.strerror or exc}") from exc
    return decode_model_file(data, source=str(path))


def write_model_file(path: Path, manifest: dict[str, Any], payload: bytes) -> None:
    """Write a model file atomically: readers see the old file or the new one, never half."""
    atomic_write_bytes(Path(path), encode_model_file(manifest, payload))


def _json_safe(value: Any) -> Any:
    """Standard JSON has no NaN or Infinity: an undefined metric (say ROC AUC on a
    one-class backtest) is stored as null instead of failing the save of a trained model.
    NumPy scalars become plain Python numbers."""
    if not isinstance(value, str | bytes | dict | list | tuple) and callable(
        getattr(value, "item", None)
    ):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
