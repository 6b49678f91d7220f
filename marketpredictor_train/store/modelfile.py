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

A signed file (written while ``MPTRAIN_SIGNING_KEY`` is set, see ``signing.py``) has format
version 2: the same layout followed by a 96-byte signature block, the SHA-256 of the
signer's public key and the Ed25519 signature of every byte before the block. The
signature covers the content, not the file's name, so a copy (``prod_model.bin``) stays
validly signed. With ``MPTRAIN_VERIFY_KEY`` set, an unsigned or wrongly signed file is
refused.

Reading checks the header against the file's size before reading the rest, so a file
whose lengths do not add up, or that is larger than :data:`MAX_FILE_BYTES`, is refused
without being read whole.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from marketpredictor_train.store.signing import Signer, Verifier

MAGIC = b"MPTRMDL\x00"
FORMAT_VERSION = 1
SIGNED_FORMAT_VERSION = 2
_FORMATS = (FORMAT_VERSION, SIGNED_FORMAT_VERSION)
_HEADER = struct.Struct(">8sHIQ")
HEADER_SIZE = _HEADER.size  # 22
CHECKSUM_SIZE = hashlib.sha256().digest_size  # 32
SIGNATURE_BLOCK_SIZE = 96  # signing.BLOCK_SIZE: key id (32) + Ed25519 signature (64)
# Far above any real model (a 300-tree forest of depth 12 is ~200 MB): a larger file is
# refused before it is read, so a crafted length cannot exhaust memory.
MAX_FILE_BYTES = 2 * 1024**3
MAX_MANIFEST_BYTES = 64 * 1024**2
# Manifest fields the store itself reads, and the JSON types they must have.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "version": str,
    "created_at": str,
    "model_type": str,
    "metrics": dict,
    "decision": dict,
    "label": dict,
    "data_window": dict,
    "params": dict,
}

_FROM_ENV: Any = object()  # default signer/verifier: the environment's keys


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A verified model file: its manifest (a JSON object) and its payload bytes."""

    manifest: dict[str, Any]
    payload: bytes = field(repr=False)
    # True when its signature was verified against MPTRAIN_VERIFY_KEY.
    verified: bool = False

    @property
    def sha256(self) -> str:
        """SHA-256 of the payload alone (hex), handy for comparing model contents."""
        return hashlib.sha256(self.payload).hexdigest()


def encode_model_file(
    manifest: dict[str, Any], payload: bytes, *, signer: Signer | None = _FROM_ENV
) -> bytes:
    """The bytes of a model file holding ``manifest`` and ``payload``, signed by
    ``signer`` (default: the key of ``MPTRAIN_SIGNING_KEY``, unsigned when unset)."""
    if signer is _FROM_ENV:
        from marketpredictor_train.store.signing import signer_from_env

        signer = signer_from_env()
    if not isinstance(manifest, dict):
        raise ModelFileError(f"A model manifest must be a dict, not {type(manifest).__name__}")
    try:
        manifest_bytes = json.dumps(
            _json_safe(manifest), sort_keys=True, ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"The model manifest is not JSON-serialisable: {exc}") from exc
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise ModelFileError("The model manifest is too large (over 64 MiB)")
    payload = bytes(payload)
    fmt = FORMAT_VERSION if signer is None else SIGNED_FORMAT_VERSION
    header = _HEADER.pack(MAGIC, fmt, len(manifest_bytes), len(payload))
    digest = hashlib.sha256()
    for part in (header, manifest_bytes, payload):
        digest.update(part)
    data = b"".join((header, manifest_bytes, payload, digest.digest()))
    return data if signer is None else data + signer.sign(data)


def decode_model_file(
    data: bytes, *, source: str = "<bytes>", verifier: Verifier | None = _FROM_ENV
) -> ModelFile:
    """Parse and verify the bytes of a model file; ``source`` names it in errors.

    With a ``verifier`` (default: the key of ``MPTRAIN_VERIFY_KEY``, none when unset) the
    file must carry that key's valid signature."""
    size = len(data)
    expected = _check_header(data[:HEADER_SIZE], size, source)
    fmt = _HEADER.unpack_from(data)[1]
    body_end = expected - CHECKSUM_SIZE - (SIGNATURE_BLOCK_SIZE if fmt == 2 else 0)
    sealed_end = body_end + CHECKSUM_SIZE
    if hashlib.sha256(data[:body_end]).digest() != data[body_end:sealed_end]:
        raise ModelFileError(
            f"{source} failed its SHA-256 check: the file was tampered with or corrupted",
            hint="Do not use it; roll back to another version or retrain.",
        )
    if verifier is _FROM_ENV:
        from marketpredictor_train.store.signing import verifier_from_env

        verifier = verifier_from_env()
    if verifier is not None:
        if fmt != SIGNED_FORMAT_VERSION:
            raise ModelFileError(
                f"{source} is not signed, and MPTRAIN_VERIFY_KEY requires signed models",
                hint="Retrain (or re-save) it on the machine that holds the signing key "
                "(MPTRAIN_SIGNING_KEY), or unset MPTRAIN_VERIFY_KEY to accept unsigned files.",
            )
        verifier.verify(data[:sealed_end], data[sealed_end:], source=source)
    manifest_end = HEADER_SIZE + _HEADER.unpack_from(data)[2]
    try:
        manifest = json.loads(data[HEADER_SIZE:manifest_end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{source} has an unreadable manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{source} has a manifest that is not a JSON object")
    for key, kind in _FIELD_TYPES.items():
        value = manifest.get(key)
        if value is not None and not isinstance(value, kind):
            raise ModelFileError(
                f"{source} has a malformed manifest: {key} is a {type(value).__name__}"
            )
    return ModelFile(
        manifest=manifest, payload=data[manifest_end:body_end], verified=verifier is not None
    )


def _check_header(head: bytes, size: int, source: str) -> int:
    """The total size the header promises, checked against the file's ``size``."""
    if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(head):
            raise ModelFileError(f"{source} is truncated ({size} bytes): not a complete model file")
        raise ModelFileError(
            f"{source} is not an mptrain model file (unknown magic bytes)",
            hint="Only files written by mptrain (models/model_*.bin) can be loaded.",
        )
    if size < HEADER_SIZE + CHECKSUM_SIZE or len(head) < HEADER_SIZE:
        raise ModelFileError(f"{source} is truncated ({size} bytes): the header is incomplete")
    _, fmt, manifest_len, payload_len = _HEADER.unpack_from(head)
    if fmt not in _FORMATS:
        raise ModelFileError(
            f"{source} has model file format {fmt}; this mptrain reads formats "
            f"{FORMAT_VERSION} and {SIGNED_FORMAT_VERSION}",
            hint="Upgrade mptrain to load models written by a newer version.",
        )
    if manifest_len > MAX_MANIFEST_BYTES:
        raise ModelFileError(
            f"{source} declares a {manifest_len}-byte manifest, over the "
            f"{MAX_MANIFEST_BYTES}-byte limit (crafted or corrupted)"
        )
    signature = SIGNATURE_BLOCK_SIZE if fmt == SIGNED_FORMAT_VERSION else 0
    expected = HEADER_SIZE + manifest_len + payload_len + CHECKSUM_SIZE + signature
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
    if expected > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{source} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit of a model file "
            "(crafted or corrupted); it was not read",
        )
    return expected


def read_bounded(path: Path) -> bytes:
    """The bytes of the model file at ``path``, read only once its header agrees with its
    size (:class:`ModelFileError` for a huge or inconsistent file, which stays unread);
    ``OSError`` when it cannot be opened."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        _check_header(handle.read(HEADER_SIZE), size, str(path))
        handle.seek(0)
        return handle.read(size + 1)


def read_model_bytes(path: Path) -> bytes:
    """:func:`read_bounded`, with every failure a :class:`ModelFileError` naming ``path``."""
    path = Path(path)
    try:
        return read_bounded(path)
    except FileNotFoundError as exc:
        raise ModelFileError(f"Model file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ModelFileError(f"Cannot read model file {path}: it is a folder") from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path}: {exc.strerror or exc}") from exc


def read_model_file(path: Path) -> ModelFile:
    """Read and verify a model file (magic, format version, lengths, SHA-256).

    Raises :class:`ModelFileError` naming ``path`` if it is missing, truncated, tampered
    with, or not an mptrain model file.
    """
    path = Path(path)
    return decode_model_file(read_model_bytes(path), source=str(path))


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
