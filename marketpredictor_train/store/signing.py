"""Ed25519 signatures of model files: who made a file, not only that it is whole.

The training machine holds the private key (``MPTRAIN_SIGNING_KEY``) and every model file
it saves is signed; a machine given the public key (``MPTRAIN_VERIFY_KEY``) refuses, on
every load, a file that is unsigned or signed by another key. Each variable holds either
the key in PEM (the text itself, ``-----BEGIN ...``) or the path of a PEM file. The keys
are read from the environment only: a secret belongs in a CI secret or a protected file,
not in a config file that is committed with the project.

Make a pair with OpenSSL::

    openssl genpkey -algorithm ed25519 -out mptrain-signing.pem
    openssl pkey -in mptrain-signing.pem -pubout -out mptrain-verify.pem
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from marketpredictor_train.errors import ConfigError, ModelFileError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNING_KEY_ENV = "MPTRAIN_SIGNING_KEY"
VERIFY_KEY_ENV = "MPTRAIN_VERIFY_KEY"
KEY_ID_SIZE = 32  # SHA-256 of the raw public key
SIGNATURE_SIZE = 64  # Ed25519
BLOCK_SIZE = KEY_ID_SIZE + SIGNATURE_SIZE


@dataclass(frozen=True)
class Signer:
    """A private key that signs model files."""

    key: Ed25519PrivateKey
    key_id: bytes

    def sign(self, data: bytes) -> bytes:
        """The signature block of ``data``: the key's id, then the signature."""
        return self.key_id + self.key.sign(data)


@dataclass(frozen=True)
class Verifier:
    """A public key that model files must be signed with."""

    key: Ed25519PublicKey
    key_id: bytes

    def verify(self, data: bytes, block: bytes, *, source: str) -> None:
        """:class:`ModelFileError` unless ``block`` is this key's signature of ``data``."""
        from cryptography.exceptions import InvalidSignature

        if block[:KEY_ID_SIZE] != self.key_id:
            raise ModelFileError(
                f"{source} is signed with another key (key id {block[:8].hex()}, "
                f"expected {self.key_id[:8].hex()})",
                hint=f"Only models signed with the key that {VERIFY_KEY_ENV} names are "
                "accepted; retrain on the machine that holds its private key.",
            )
        try:
            self.key.verify(block[KEY_ID_SIZE:], data)
        except InvalidSignature as exc:
            raise ModelFileError(
                f"{source} has an invalid signature: the file was altered after it was signed",
                hint="Do not use it; roll back to another version or retrain.",
            ) from exc


def signer_from_env() -> Signer | None:
    """The signer of ``MPTRAIN_SIGNING_KEY``, or None when it is unset or empty."""
    text = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return _signer(text) if text else None


def verifier_from_env() -> Verifier | None:
    """The verifier of ``MPTRAIN_VERIFY_KEY``, or None when it is unset or empty."""
    text = os.environ.get(VERIFY_KEY_ENV, "").strip()
    return _verifier(text) if text else None


def check_keys() -> None:
    """:class:`ConfigError` (exit 3) now if either key variable holds no usable key."""
    signer_from_env()
    verifier_from_env()


@lru_cache(maxsize=4)
def _signer(text: str) -> Signer:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = _pem(text, SIGNING_KEY_ENV)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise _bad_key(SIGNING_KEY_ENV, "an unencrypted Ed25519 private key", exc) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise _bad_key(SIGNING_KEY_ENV, "an Ed25519 private key", type(key).__name__)
    return Signer(key, key_id(key.public_key()))


@lru_cache(maxsize=4)
def _verifier(text: str) -> Verifier:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    pem = _pem(text, VERIFY_KEY_ENV)
    key: object
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        try:  # a private key verifies too (its public half): accepted on the same machine
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise _bad_key(VERIFY_KEY_ENV, "an Ed25519 public key", exc) from exc
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise _bad_key(VERIFY_KEY_ENV, "an Ed25519 public key", type(key).__name__)
    return Verifier(key, key_id(key))


def key_id(public: Ed25519PublicKey) -> bytes:
    """SHA-256 of the raw 32-byte public key: names the key in each signature block."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()


def _pem(text: str, variable: str) -> bytes:
    """The PEM bytes ``text`` holds, or those of the file it names."""
    if text.startswith("-----BEGIN"):
        return text.encode("ascii", "replace")
    path = Path(text).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        shown = text if len(text) < 200 and "\n" not in text else "<text>"
        raise ConfigError(
            f"{variable} is neither a PEM key nor a readable key file ({shown}: "
            f"{exc.strerror or exc})",
            hint=f"Set {variable} to the path of a PEM file or to the PEM text itself; "
            "see README 'Security' for making a key pair.",
        ) from exc


def _bad_key(variable: str, expected: str, cause: object) -> ConfigError:
    reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return ConfigError(
        f"{variable} does not hold {expected} in PEM format ({reason})",
        hint="Make a key pair with `openssl genpkey -algorithm ed25519 -out "
        "mptrain-signing.pem` and `openssl pkey -in mptrain-signing.pem -pubout -out "
        "mptrain-verify.pem` (README 'Security').",
    )
