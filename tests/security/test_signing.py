"""Signed model files: with MPTRAIN_VERIFY_KEY every load refuses an unsigned file, a file
signed by another key and a forged one (edited and resealed); a copy to prod_model.bin
stays valid; keys come as a path or as PEM text; a bad key exits 3."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from crafted import fitted, manifest_for

from marketpredictor_train.errors import ConfigError, ModelFileError
from marketpredictor_train.predictor import load_model
from marketpredictor_train.store import ModelStore, read_model_file
from marketpredictor_train.store.modelfile import HEADER_SIZE, SIGNED_FORMAT_VERSION


def _pair(folder: Path, name: str = "k") -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = folder / f"{name}-signing.pem"
    public = folder / f"{name}-verify.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _forge(path: Path, **metrics: float) -> None:
    """Edit the manifest and reseal the SHA-256 (keeping the signature block), as someone
    without the private key would."""
    import struct

    data = path.read_bytes()
    _, fmt, manifest_len, payload_len = struct.unpack_from(">8sHIQ", data)
    manifest = json.loads(data[HEADER_SIZE : HEADER_SIZE + manifest_len])
    manifest["metrics"].update(metrics)
    body = json.dumps(manifest, sort_keys=True).encode()
    payload = data[HEADER_SIZE + manifest_len : HEADER_SIZE + manifest_len + payload_len]
    signature = data[-96:] if fmt == SIGNED_FORMAT_VERSION else b""
    head = struct.pack(">8sHIQ", data[:8], fmt, len(body), len(payload))
    sealed = head + body + payload
    path.write_bytes(sealed + hashlib.sha256(sealed).digest() + signature)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _pair(tmp_path)


@pytest.fixture
def signed_store(_isolated: Path, keys, monkeypatch) -> ModelStore:
    private, _ = keys
    monkeypatch.setenv("MPTRAIN_SIGNING_KEY", str(private))
    store = ModelStore(_isolated / "models")
    payload = fitted("rf").to_bytes()
    first = store.save(manifest_for("rf", "x"), payload)
    store.save(manifest_for("rf", "x"), payload)
    store.promote(first.version, reason="t")
    monkeypatch.delenv("MPTRAIN_SIGNING_KEY")
    return store


def test_signed_files_verify_and_a_copy_to_production_stays_valid(
    signed_store: ModelStore, keys, monkeypatch
) -> None:
    _, public = keys
    monkeypatch.setenv("MPTRAIN_VERIFY_KEY", str(public))
    newest = signed_store.version_names()[0]
    shutil.copy(signed_store.models_dir / f"model_{newest}.bin", signed_store.prod_path)
    assert signed_store.production().version == newest
    model = read_model_file(signed_store.prod_path)
    assert model.verified
    assert load_model(models_dir=signed_store.models_dir).version == newest


def test_forged_unsigned_and_foreign_files_are_refused(
    signed_store: ModelStore, keys, tmp_path: Path, monkeypatch
) -> None:
    _, public = keys
    newest, oldest = signed_store.version_names()[0], signed_store.version_names()[-1]
    forged = signed_store.models_dir / f"model_{newest}.bin"
    _forge(forged, accuracy=0.99)
    # Without a verify key the reseal passes, exactly as the SHA-256 alone allows...
    assert read_model_file(forged).manifest["metrics"]["accuracy"] == 0.99
    monkeypatch.setenv("MPTRAIN_VERIFY_KEY", public.read_text())  # the key as PEM text
    with pytest.raises(ModelFileError, match="invalid signature"):
        read_model_file(forged)
    scan = signed_store.scan()
    assert [m.version for m in scan.models] == [oldest]
    assert "invalid signature" in scan.unreadable[0].reason
    # ...an unsigned file (written without the key) and one signed by another key, too.
    unsigned = tmp_path / "unsigned.bin"
    monkeypatch.delenv("MPTRAIN_VERIFY_KEY")
    from marketpredictor_train.store import write_model_file

    write_model_file(unsigned, manifest_for("rf", "x"), b"payload")
    other_private, _ = _pair(tmp_path, "other")
    monkeypatch.setenv("MPTRAIN_SIGNING_KEY", str(other_private))
    foreign = tmp_path / "foreign.bin"
    write_model_file(foreign, manifest_for("rf", "x"), b"payload")
    monkeypatch.delenv("MPTRAIN_SIGNING_KEY")
    monkeypatch.setenv("MPTRAIN_VERIFY_KEY", str(public))
    with pytest.raises(ModelFileError, match="is not signed"):
        read_model_file(unsigned)
    with pytest.raises(ModelFileError, match="signed with another key"):
        read_model_file(foreign)
    # The rollback target is verified as well.
    with pytest.raises(ModelFileError, match="invalid signature"):
        signed_store.rollback(newest)
    assert signed_store.production().version == oldest


@pytest.mark.parametrize("variable", ["MPTRAIN_SIGNING_KEY", "MPTRAIN_VERIFY_KEY"])
@pytest.mark.parametrize(
    "value", ["-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----", "/no/such.pem"]
)
def test_a_bad_key_is_a_configuration_error(variable: str, value: str, monkeypatch) -> None:
    from marketpredictor_train.store.signing import check_keys

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        check_keys()


def test_an_rsa_key_is_refused(tmp_path: Path, monkeypatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from marketpredictor_train.store.signing import check_keys

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv("MPTRAIN_SIGNING_KEY", pem.decode())
    with pytest.raises(ConfigError, match="Ed25519"):
        check_keys()


def test_without_keys_nothing_changes(_isolated: Path) -> None:
    store = ModelStore(_isolated / "models")
    saved = store.save(manifest_for("rf", "x"), b"payload")
    data = saved.path.read_bytes()
    assert data[8:10] == b"\x00\x01"  # format 1: exactly the unsigned file of before
    assert not read_model_file(saved.path).verified


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_key_pair_as_documented_works_through_the_cli(_isolated: Path) -> None:
    """README's two openssl commands make a pair mptrain signs and verifies with; through
    the CLI a forged file is refused (exit 1) and a bad key exits 3."""
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", "mptrain-signing.pem"],
        check=True,
        cwd=_isolated,
    )
    subprocess.run(
        ["openssl", "pkey", "-in", "mptrain-signing.pem", "-pubout", "-out", "mptrain-verify.pem"],
        check=True,
        cwd=_isolated,
    )
    import os

    os.environ["MPTRAIN_SIGNING_KEY"] = str(_isolated / "mptrain-signing.pem")
    try:
        store = ModelStore(_isolated / "models")
        first = store.save(manifest_for("rf", "x"), b"payload-1")
        second = store.save(manifest_for("rf", "x"), b"payload-2")
        store.promote(first.version, reason="t")
    finally:
        del os.environ["MPTRAIN_SIGNING_KEY"]
    _forge(second.path, accuracy=0.99)
    env = {**os.environ, "MPTRAIN_VERIFY_KEY": str(_isolated / "mptrain-verify.pem")}

    def mptrain(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "marketpredictor_train", *args],
            cwd=_isolated,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    rollback = mptrain("rollback", "--version", second.version)
    assert rollback.returncode == 1, rollback.stderr
    assert "invalid signature" in rollback.stderr and "Traceback" not in rollback.stderr
    listing = mptrain("models-list", "--json")
    assert listing.returncode == 0
    document = json.loads(listing.stdout)
    assert [m["version"] for m in document["models"]] == [first.version]
    bad = mptrain("models-list", MPTRAIN_VERIFY_KEY="-----BEGIN PUBLIC KEY-----\nxx\n")
    assert bad.returncode == 3, bad.stderr
    assert "MPTRAIN_VERIFY_KEY" in bad.stderr and "Traceback" not in bad.stderr


def test_the_weekly_workflow_signs_with_the_repository_secret() -> None:
    import yaml

    workflow = Path(__file__).resolve().parents[2] / ".github/workflows/train-model.yml"
    steps = yaml.safe_load(workflow.read_text())["jobs"]
    train = next(
        step for job in steps.values() for step in job.get("steps", []) if step.get("id") == "train"
    )
    assert train["env"]["MPTRAIN_SIGNING_KEY"] == "${{ secrets.MPTRAIN_SIGNING_KEY }}"
    assert "mptrain train" in train["run"]
