"""Loader benchmark: what checking an untrusted model payload costs, per model type, on a
model of the default size, for the two ways of making a crafted payload harmless:

- in-process structure validation (``check_structure``: every tree's nodes, children and
  split features checked in Python/NumPy after the library built the model), and
- a child process that loads the payload first: forked by a helper process (the way
  mptrain does it; the helper's start is paid once per process), or a fresh interpreter
  per load (``python -c``: import the library, load, check).

Run: uv run python benchmarks/bench_loaders.py [--runs 5]
Reports the median of ``runs`` loads (the first probe, with the helper's start, apart).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from marketpredictor_train.models import isolation
from marketpredictor_train.models.registry import get_model_type

N_FEATURES = 60
_FRESH = (
    "import sys; from marketpredictor_train.models.registry import get_model_type; "
    "m = get_model_type(sys.argv[1]).from_bytes(sys.stdin.buffer.read()); "
    "m.check_structure(int(sys.argv[2]))"
)


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(name: str, X: np.ndarray, y: np.ndarray, runs: int) -> str:
    model_type = get_model_type(name)
    model = model_type()
    model.fit(X, y)
    payload = model.to_bytes()
    loaded = model_type.from_bytes(payload)
    load = _median(lambda: model_type.from_bytes(payload), runs)
    check = _median(lambda: loaded.check_structure(N_FEATURES), runs)

    def probe() -> None:
        isolation._probed.clear()
        isolation.probe_payload(name, payload, {}, n_features=N_FEATURES)

    def fresh() -> None:
        subprocess.run(
            [sys.executable, "-c", _FRESH, name, str(N_FEATURES)],
            input=payload,
            check=True,
            capture_output=True,
        )

    start = time.perf_counter()
    probe()
    first = time.perf_counter() - start
    fork = _median(probe, runs)
    spawned = _median(fresh, max(1, runs // 2))
    return (
        f"{name:<5} {len(payload) / 1e6:7.2f}MB {load * 1e3:6.0f}ms {check * 1e3:6.0f}ms "
        f"{first * 1e3:7.0f}ms {fork * 1e3:6.0f}ms {spawned * 1e3:6.0f}ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, N_FEATURES))
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)
    head = ("type", "payload", "load", "check", "fork 1st", "fork", "fresh")
    print("{:<5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8}".format(*head))
    for name in ("xgb", "lgb", "rf"):
        print(_row(name, X, y, args.runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
