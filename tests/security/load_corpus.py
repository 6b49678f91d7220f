"""Load every model file in a folder as the library does (read, verify, check, load,
predict) and print one JSON line per file; run as a script, in its own process, so that a
crash shows as the process's signal and the last file named before it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from marketpredictor_train.errors import ModelFileError
from marketpredictor_train.models.trained import TrainedModel
from marketpredictor_train.store import read_model_file


def main(folder: Path) -> None:
    rows = np.random.default_rng(1).normal(0, 2, size=(50, 5))
    for path in sorted(folder.glob("*.bin")):
        print(json.dumps({"start": path.name}), flush=True)
        try:
            trained = TrainedModel.from_model_file(read_model_file(path), source=str(path))
            proba = np.asarray(trained.model.predict_proba(rows), dtype=float)
            ok = proba.shape == (50,) and bool(np.all((proba >= 0) & (proba <= 1)))
            outcome = {"outcome": "ok" if ok else "bad predictions"}
        except ModelFileError as exc:
            outcome = {"outcome": "refused", "message": exc.message}
        except Exception as exc:  # what the test exists to catch: a traceback
            outcome = {"outcome": "error", "message": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"file": path.name, **outcome}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
