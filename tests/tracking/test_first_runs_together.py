"""Several first runs on MLflow's default local store (./mlflow.db, not there yet) that
start together all get recorded: the store's tables are created under a file lock beside
the database, not by every process at once ("duplicate column name", "table already
exists", runs lost)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# One process of `mptrain train`'s tracking: the run is opened (store, experiment, run)
# when a barrier file appears, so that every process reaches the new database at once.
_FIRST_RUN = """
import sys, time
from pathlib import Path
from marketpredictor_train.config import load_settings
from marketpredictor_train.tracking.mlflow_runs import TrainingRun
import mlflow  # paid before the barrier
go, name = Path(sys.argv[1]), sys.argv[2]
Path(f"{go}-{name}").touch()
while not go.exists():
    time.sleep(0.002)
run = TrainingRun(load_settings(), name)
run.start()
print("WARNINGS", run.warnings)
if run.mlflow_run_id is not None:
    run.finish(None, params={}, metrics={"accuracy": 0.5}, n_features=1, tickers=["AAPL"],
               status="not_promoted", promoted=False, version=None, reason="test")
"""


@pytest.mark.slow  # four interpreters importing MLflow, one creating its database (~20 s)
def test_four_first_runs_started_together_are_four_recorded_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPTRAIN_", "MLFLOW_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    go = tmp_path / "go"
    names = [f"first-{i}" for i in range(4)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _FIRST_RUN, str(go), name],
            cwd=Path.cwd(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}-{n}").exists() for n in names):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate()[0] for w in workers]
        time.sleep(0.05)
    assert not Path("mlflow.db").exists()  # a fresh store: the first runs create it
    go.touch()
    outputs = [w.communicate(timeout=180)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    for out in outputs:
        assert "WARNINGS []" in out, out

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mptrain")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["mptrain.run_id"] for r in runs) == names
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert Path("mlflow.db.lock").exists()
