"""Untrusted model payloads are first opened in a child process.

The parsers of XGBoost and LightGBM are C++ that trusts its input: a few changed bytes of
a model can abort, hang or crash the process reading it (a segfault cannot be caught).
So before a payload of such a model type is loaded here, a short-lived child process
loads it, walks every tree (checking each node's children and split feature) and
predicts on probe rows; only a payload the child read cleanly is then loaded in this
process. A crash, an error or a hang of the child refuses
the file with a one-line reason. A payload is probed once per process (cached by its
SHA-256), and a file whose signature was verified (see ``store/signing.py``) comes from
the training machine and is not probed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from marketpredictor_train.errors import ModelFileError

PROBE_TIMEOUT_S = 30.0  # a real probe takes about a second
_PROBE_ROWS = 64
_probed: set[tuple[str, str, int, str]] = set()


def probe_payload(
    type_name: str, payload: bytes, params: Mapping[str, Any], *, n_features: int
) -> None:
    """Load ``payload`` as model type ``type_name`` in a child process, walk its trees and
    predict ``n_features``-wide probe rows; :class:`ModelFileError` if the child fails,
    crashes or hangs.

    Children are forked by a helper process (started once per process, with nothing but
    the model library imported and never run), so a probe costs milliseconds after the
    first, no thread pool of this process is inherited half-locked, and the caller's main
    module is never imported again (as multiprocessing's start methods would)."""
    key = (type_name, hashlib.sha256(payload).hexdigest(), n_features, repr(sorted(params.items())))
    if key in _probed:
        return
    request = json.dumps({"type": type_name, "params": dict(params), "n_features": n_features})
    reply = _helper(type_name).ask(request.encode(), bytes(payload))
    status, message = reply.get("status"), reply.get("message")
    if status == "ok":
        _probed.add(key)
        return
    if status == "signal":
        raise ModelFileError(
            f"the {type_name} library crashed reading the model ({message}): the payload is "
            "crafted or corrupted"
        )
    if status == "timeout":
        raise ModelFileError(
            f"the {type_name} library did not finish reading the model within "
            f"{PROBE_TIMEOUT_S:.0f} s (a crafted or corrupted payload)"
        )
    raise ModelFileError(str(message or "the model check failed"))


class _Helper:
    """The helper process: reads requests on its stdin, forks one child per request, and
    answers one JSON line per request on its stdout."""

    def __init__(self, library: str | None) -> None:
        self.library = library
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        code = f"from marketpredictor_train.models.isolation import serve; serve({self.library!r})"
        try:
            return subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # The libraries print warnings of a crafted file; they are not the user's.
                stderr=subprocess.DEVNULL,
                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
            )
        except OSError as exc:
            raise ModelFileError(f"cannot start a process to check the model: {exc}") from exc

    def ask(self, request: bytes, payload: bytes) -> dict[str, Any]:
        with self.lock:
            return self._ask(request, payload)

    def _ask(self, request: bytes, payload: bytes) -> dict[str, Any]:
        for attempt in (1, 2):  # a helper that died meanwhile is started again, once
            if self.proc is None or self.proc.poll() is not None:
                self.proc = self._start()
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write(
                    struct.pack(">IQ", len(request), len(payload)) + request + payload
                )
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = b""
            if line:
                try:
                    return dict(json.loads(line))
                except ValueError:
                    line = b""  # not an answer: the helper is not trusted further
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            if attempt == 2:
                raise ModelFileError("the process that checks model files stopped unexpectedly")
        raise AssertionError("unreachable")


@cache
def _helper(type_name: str) -> _Helper:
    return _Helper(_LIBRARIES.get(type_name))


# The library of each built-in type that is probed, imported by its helper.
_LIBRARIES = {"xgb": "xgboost", "lgb": "lightgbm"}


def serve(library: str | None) -> None:
    """The helper's loop (see :class:`_Helper`)."""
    import importlib

    importlib.import_module("numpy")
    importlib.import_module("marketpredictor_train.models.registry")
    if library:
        importlib.import_module(library)
    # Answers go out on a private copy of stdout; what the libraries print (C code writes
    # to file descriptor 1 directly) goes to stderr instead of into an answer.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer
    while True:
        head = stdin.read(12)
        if len(head) < 12:
            return
        request_len, payload_len = struct.unpack(">IQ", head)
        request = json.loads(stdin.read(request_len))
        payload = stdin.read(payload_len)
        stdout.write(json.dumps(_fork_probe(request, payload)).encode() + b"\n")
        stdout.flush()


def _fork_probe(request: dict[str, Any], payload: bytes) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: probe, say why it failed, and leave without cleanup
        os.close(read_end)
        message = _probe_here(request, payload)
        if message is not None:
            os.write(write_end, message.encode("utf-8", "replace")[:2000])
        os._exit(0 if message is None else 1)
    os.close(write_end)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"status": "timeout"}
        time.sleep(0.005)
    with os.fdopen(read_end, "rb") as reader:
        message = reader.read().decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        return {"status": "signal", "message": name}
    if os.WEXITSTATUS(status) == 0 and not message:
        return {"status": "ok"}
    return {"status": "error", "message": message or f"exit {os.WEXITSTATUS(status)}"}


def _probe_here(request: dict[str, Any], payload: bytes) -> str | None:
    """Load, walk and predict in this (child) process: None when fine, else the reason."""
    try:
        from marketpredictor_train.models.registry import get_model_type

        n_features = int(request["n_features"])
        model = get_model_type(request["type"]).from_bytes(payload, request["params"])
        model.check_structure(n_features)
        probe_predictions(model, n_features)
    except ModelFileError as exc:
        return exc.message
    except Exception as exc:  # the library's own error: the payload is not a model
        return f"Not a readable model: {type(exc).__name__}: {exc}".splitlines()[0][:500]
    return None


def probe_predictions(model: Any, n_features: int) -> None:
    """Predict on probe rows (zeros, huge and tiny values, noise) and check that the answer
    is one probability per row."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = rng.normal(0.0, 3.0, size=(_PROBE_ROWS, n_features))
    rows[0], rows[1], rows[2], rows[3] = 0.0, 1e30, -1e30, 1e-30
    proba = np.asarray(model.predict_proba(rows), dtype=float)
    if proba.shape != (_PROBE_ROWS,) or not np.all((proba >= 0) & (proba <= 1)):
        raise ModelFileError("Not a usable model: its predictions are not one probability per row")
