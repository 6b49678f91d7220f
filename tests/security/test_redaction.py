"""No credential in any output: URL passwords and secret environment values are masked on
the console, in logs/training.log, in JSON documents and in error messages."""

from __future__ import annotations

import http.server
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_helpers import make_manifest, payload_for  # noqa: E402

from marketpredictor_train.errors import ConfigError, MptrainError  # noqa: E402
from marketpredictor_train.logconfig import configure_logging  # noqa: E402
from marketpredictor_train.redact import mask_url, redact  # noqa: E402
from marketpredictor_train.results import failure_document  # noqa: E402
from marketpredictor_train.store import ModelStore  # noqa: E402

SECRET = "s3cretPassw0rd"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cretPassw0rd@host:5000/", "http://user:***@host:5000/"),
        (
            "postgresql+psycopg2://u:s3cretPassw0rd@db/optuna",
            "postgresql+psycopg2://u:***@db/optuna",
        ),
        ("https://u:p@ss@word@host/x", "https://u:***@host/x"),  # an unescaped "@"
        ("http://:s3cretPassw0rd@host", "http://:***@host"),
        ("http://user@host:5000/path", "http://user@host:5000/path"),  # no password
        ("http://host:5000/path", "http://host:5000/path"),
        ("sqlite:///models/optuna.db", "sqlite:///models/optuna.db"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_redact_masks_urls_inside_text_and_secret_env_values(monkeypatch) -> None:
    text = f"API request to 'http://me:{SECRET}@127.0.0.1:9/api' failed (token tok-abcdef123)"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-abcdef123")
    masked = redact(text)
    assert SECRET not in masked and "tok-abcdef123" not in masked
    assert "http://me:***@127.0.0.1:9/api" in masked


def test_a_private_key_is_masked_and_a_key_path_is_not(monkeypatch) -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+secretbits\n"
        "-----END PRIVATE KEY-----\n"
    )
    assert "secretbits" not in redact(f"cannot use key {pem} here")
    monkeypatch.setenv("MPTRAIN_SIGNING_KEY", "/etc/mptrain/signing.pem")
    assert "/etc/mptrain/signing.pem" in redact("no such file /etc/mptrain/signing.pem")
    monkeypatch.setenv("MPTRAIN_SIGNING_KEY", pem)
    assert "secretbits" not in redact(f"value {pem.strip()[:60]}")


def test_errors_and_documents_are_masked_at_construction() -> None:
    exc = ConfigError(f"Bad URL http://u:{SECRET}@h/", hint=f"try http://u:{SECRET}@other/")
    assert SECRET not in str(exc) and SECRET not in exc.message and SECRET not in exc.hint
    document = failure_document("train", exc, duration_s=0.1)
    assert SECRET not in json.dumps(document)
    from marketpredictor_train.results import envelope

    head = envelope("train", status="x", exit_code=0, warnings=[f"at http://a:{SECRET}@b/"])
    assert SECRET not in json.dumps(head)


def test_log_lines_of_ours_and_of_libraries_are_masked(tmp_path: Path, capsys, monkeypatch) -> None:
    # MLflow's logger as mptrain leaves it (MLflow told not to configure its logging), even
    # when an earlier test imported MLflow with its own handler on.
    mlflow_logger = logging.getLogger("mlflow")
    monkeypatch.setattr(mlflow_logger, "propagate", True)
    monkeypatch.setattr(mlflow_logger, "handlers", [])
    log_path = configure_logging(logs_dir=tmp_path / "logs")
    structlog.get_logger("t").warning(f"reach http://u:{SECRET}@h/", uri=f"http://u:{SECRET}@h/")
    logging.getLogger("mlflow").warning("request to http://u:%s@h/ failed", SECRET)
    try:
        raise RuntimeError(f"connection to http://u:{SECRET}@h/ refused")
    except RuntimeError:
        logging.getLogger("urllib3").error("failed", exc_info=True)
        structlog.get_logger("t").exception("failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = log_path.read_text()
    assert written.count("u:***@h/") >= 5
    assert SECRET not in written
    assert SECRET not in capsys.readouterr().err


def test_study_storage_url_errors_are_masked() -> None:
    from marketpredictor_train.tuning.storage import describe_storage, open_storage

    assert describe_storage(f"postgresql://u:{SECRET}@db:5432/o") == "postgresql://u:***@db:5432/o"
    with pytest.raises(MptrainError) as caught:
        open_storage(f"nosuchdriver://u:{SECRET}@db:5432/o", heartbeat_s=60)
    assert SECRET not in str(caught.value)


# ------------------------------------------------------------------ through the CLI


class _Answer500(http.server.BaseHTTPRequestHandler):
    def _fail(self) -> None:
        body = b'{"error_code": "INTERNAL_ERROR", "message": "boom"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _fail

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_500() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mptrain(args: list[str], cwd: Path, tracking_uri: str, timeout: int = 120):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        # Bounded: one try, a short wait per request.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_no_secret(result, cwd: Path, *files: str) -> None:
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    for name in ("logs/training.log", *files):
        assert SECRET not in (cwd / name).read_text(), name


@pytest.mark.slow
@pytest.mark.parametrize("server", ["closed port", "answers 500"])
def test_rollback_with_credentials_in_the_tracking_uri_shows_none(
    _isolated: Path, server: str, request
) -> None:
    store = ModelStore(_isolated / "models")
    first = store.save(make_manifest(), payload_for(1))
    second = store.save(make_manifest(), payload_for(2))
    store.promote(first.version, reason="t")
    store.promote(second.version, reason="t")
    port = _closed_port() if server == "closed port" else request.getfixturevalue("server_500")
    result = _mptrain(["rollback", "--json"], _isolated, f"http://user:{SECRET}@127.0.0.1:{port}/")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert any("user:***@127.0.0.1" in w for w in document["warnings"]), document["warnings"]
    _assert_no_secret(result, _isolated)


@pytest.mark.slow
def test_train_with_credentials_in_the_tracking_uri_shows_none(
    _isolated: Path, server_500: int
) -> None:
    result = _mptrain(
        [
            "train",
            "--source",
            "sample",
            "--tickers",
            "AAPL,MSFT",
            "--period",
            "3y",
            "--output-json",
            "result.json",
        ],
        _isolated,
        f"http://user:{SECRET}@127.0.0.1:{server_500}/",
        timeout=600,
    )
    assert result.returncode in (0, 2), result.stderr
    document = json.loads((_isolated / "result.json").read_text())
    assert any("MLflow" in w for w in document["warnings"]), document["warnings"]
    _assert_no_secret(result, _isolated, "result.json")


def test_a_library_handler_of_its_own_prints_masked_lines_too(tmp_path: Path, monkeypatch) -> None:
    """A library that configured its own logging (MLflow with MLFLOW_CONFIGURE_LOGGING=true)
    prints past mptrain's handlers: its lines and tracebacks are masked as well."""
    import io

    stream = io.StringIO()
    library = logging.getLogger("some_library_with_its_own_handler")
    monkeypatch.setattr(library, "propagate", False)
    monkeypatch.setattr(library, "handlers", [logging.StreamHandler(stream)])
    configure_logging(logs_dir=tmp_path / "logs")
    library.warning("request to http://u:%s@h/ failed", SECRET)
    try:
        raise RuntimeError(f"connection to http://u:{SECRET}@h/ refused")
    except RuntimeError:
        library.error("failed", exc_info=True)
    printed = stream.getvalue()
    assert printed.count("u:***@h/") >= 2, printed
    assert SECRET not in printed
