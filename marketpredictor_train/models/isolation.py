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
import os
import signal
from collections.abc import Mapping
from functools import cache
from typing import Any

from marketpredictor_train.errors import ModelFileError

PROBE_TIMEOUT_S = 120.0
_PROBE_ROWS = 64
_probed: set[tuple[str, str, int, str]] = set()


def probe_payload(
    type_name: str, payload: bytes, params: Mapping[str, Any], *, n_features: int
) -> None:
    """Load ``payload`` as model type ``type_name`` in a child process, walk its trees and
    predict ``n_features``-wide probe rows; :class:`ModelFileError` if the child fails,
    crashes or hangs.

    Children are forked from a fork server (started once per process, with nothing but
    the model libraries imported and never run), so a probe costs milliseconds after the
    first, and no thread pool of this process is inherited half-locked."""
    key = (type_name, hashlib.sha256(payload).hexdigest(), n_features, repr(sorted(params.items())))
    if key in _probed:
        return
    context = _context()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(send, type_name, bytes(payload), dict(params), n_features)
    )
    try:
        child.start()
    except OSError as exc:
        raise ModelFileError(f"cannot start a process to check the model: {exc}") from exc
    send.close()
    child.join(PROBE_TIMEOUT_S)
    if child.exitcode is None:
        child.kill()
        child.join()
        raise ModelFileError(
            f"the {type_name} library did not finish reading the model within "
            f"{PROBE_TIMEOUT_S:.0f} s (a crafted or corrupted payload)"
        )
    try:
        reason = receive.recv() if receive.poll() else None
    except (EOFError, OSError):  # the child ended without a word (a crash)
        reason = None
    receive.close()
    if child.exitcode == 0 and reason is None:
        _probed.add(key)
        return
    if child.exitcode < 0:
        try:
            name = signal.Signals(-child.exitcode).name
        except ValueError:
            name = f"signal {-child.exitcode}"
        raise ModelFileError(
            f"the {type_name} library crashed reading the model ({name}): the payload is "
            "crafted or corrupted"
        )
    raise ModelFileError(reason or f"the model check failed (exit {child.exitcode})")


@cache
def _context() -> Any:
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    return context


# Imported once by the fork server, so that each probe starts with them loaded.
_PRELOAD = ("numpy", "xgboost", "lightgbm", "marketpredictor_train.models.registry")


def _child(send: Any, type_name: str, payload: bytes, params: dict[str, Any], n: int) -> None:
    """The child's side: load, walk and predict; the reason on ``send`` when it fails."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        from marketpredictor_train.models.registry import get_model_type

        model = get_model_type(type_name).from_bytes(payload, params)
        model.check_structure(n)
        probe_predictions(model, n)
    except ModelFileError as exc:
        send.send(exc.message)
    except Exception as exc:  # the library's own error: the payload is not a model
        send.send(f"Not a readable model: {type(exc).__name__}: {exc}".splitlines()[0][:500])
    send.close()


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
