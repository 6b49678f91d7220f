"""Untrusted model payloads are first opened in a child process.

The parsers of XGBoost and LightGBM are C++ that trusts its input: a few changed bytes of
a model can abort, hang or crash the process reading it (a segfault cannot be caught).
So before a payload of such a model type is loaded here, a short-lived child process
loads it, walks every tree (checking each node's children and split feature) and
predicts on probe rows. A crash, an error or a hang of the child refuses the file with
a one-line reason. A payload the child read cleanly is not parsed here as it is: the
child writes its model back out with the library's own writer, and this process loads
that. Some crafted payloads make a parser read memory it should not, so whether it
crashes depends on the process's memory layout (a LightGBM model with one flipped byte
crashed one process in three); what the library wrote itself parses the same everywhere.
A payload is probed once per process (cached by its SHA-256), and a file whose signature
was verified (see ``store/signing.py``) comes from the training machine and is not probed.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
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
_probed: dict[tuple[str, str, int, str], bytes] = {}


def probe_payload(
    type_name: str, payload: bytes, params: Mapping[str, Any], *, n_features: int
) -> bytes:
    """Load ``payload`` as model type ``type_name`` in a child process, walk its trees and
    predict ``n_features``-wide probe rows; :class:`ModelFileError` if the child fails,
    crashes or hangs. Returns the payload the child's library wrote back from the model
    it loaded: the bytes to load in this process.

    Children are forked by a helper process (started once per process, with nothing but
    the model library imported and never run), so a probe costs milliseconds after the
    first, no thread pool of this process is inherited half-locked, and the caller's main
    module is never imported again (as multiprocessing's start methods would)."""
    key = (type_name, hashlib.sha256(payload).hexdigest(), n_features, repr(sorted(params.items())))
    if key in _probed:
        return _probed[key]
    request = json.dumps({"type": type_name, "params": dict(params), "n_features": n_features})
    reply, written = _helper(type_name).ask(request.encode(), bytes(payload))
    status, message = reply.get("status"), reply.get("message")
    if status == "ok" and written:
        _probed[key] = written
        return written
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

    def ask(self, request: bytes, payload: bytes) -> tuple[dict[str, Any], bytes]:
        """The helper's answer, and the payload the child wrote back (empty unless ok)."""
        with self.lock:
            return self._ask(request, payload)

    def _ask(self, request: bytes, payload: bytes) -> tuple[dict[str, Any], bytes]:
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
                answer = dict(json.loads(line)) if line else None
                length = int(answer.get("length", 0)) if answer else 0
                written = self.proc.stdout.read(length) if length > 0 else b""
            except (BrokenPipeError, OSError, ValueError, TypeError):
                answer = None  # no answer, or not one: the helper is not trusted further
            if answer is not None and len(written) == length:
                return answer, written
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
        answer, written = _fork_probe(request, payload)
        answer["length"] = len(written)
        stdout.write(json.dumps(answer).encode() + b"\n" + written)
        stdout.flush()


def _fork_probe(request: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """Probe in a forked child: its answer, and on success the payload it wrote back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: probe, send the payload back or say why not, leave
        os.close(read_end)
        written, message = _probe_here(request, payload)
        data = written if message is None else message.encode("utf-8", "replace")[:2000]
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
        os._exit(0 if message is None else 1)
    os.close(write_end)
    try:
        status, data = _collect(pid, read_end)
    finally:
        os.close(read_end)
    if status is None:
        return {"status": "timeout"}, b""
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        return {"status": "signal", "message": name}, b""
    if os.WEXITSTATUS(status) == 0 and data:
        return {"status": "ok"}, data
    message = data.decode("utf-8", "replace")
    return {"status": "error", "message": message or f"exit {os.WEXITSTATUS(status)}"}, b""


def _collect(pid: int, read_end: int) -> tuple[int | None, bytes]:
    """What the child wrote, read while it writes (a payload is larger than a pipe
    holds), and its wait status; None after PROBE_TIMEOUT_S (the child is killed)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    status: int | None = None
    reading = True
    while status is None or reading:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, b""
        if reading and select.select([read_end], [], [], 0.005)[0]:
            chunk = os.read(read_end, 1 << 16)
            chunks.append(chunk)
            reading = bool(chunk)
        elif not reading:
            time.sleep(0.005)
        if status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
    return status, b"".join(chunks)


def _probe_here(request: dict[str, Any], payload: bytes) -> tuple[bytes, str | None]:
    """Load, walk and predict in this (child) process: the model written back out by its
    library and None when fine, else the reason."""
    try:
        from marketpredictor_train.models.registry import get_model_type

        n_features = int(request["n_features"])
        model = get_model_type(request["type"]).from_bytes(payload, request["params"])
        model.check_structure(n_features)
        probe_predictions(model, n_features)
        written = model.to_bytes()
        if not written:
            return b"", "Not a usable model: its library wrote it back empty"
    except ModelFileError as exc:
        return b"", exc.message
    except Exception as exc:  # the library's own error: the payload is not a model
        return b"", f"Not a readable model: {type(exc).__name__}: {exc}".splitlines()[0][:500]
    return written, None


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
