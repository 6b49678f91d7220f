"""Beyond one machine, for real: `mptrain optimize` worker processes sharing one study in
PostgreSQL (counts add up, nothing lost or run twice), a worker killed mid-trial whose
trial is failed and run again when the study resumes, and trials logged to a real
`mlflow server` on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.tuning.conftest import SMALL_FLAGS
from tests.tuning.helpers import free_port, mptrain_process, wait_for

# Real worker processes and a real MLflow server: tens of seconds each, a minute for the
# server. Each wait below is bounded on its own (a worker may run 300 s before _finish
# fails it), so the suite's 300 s per-test backstop is raised above those waits.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


# One thread per worker: two workers on a two-core machine must not fight over cores.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _worker(url: str, study: str, trials: int, cwd: Path, *extra: str, env=None):
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**ONE_THREAD, **(env or {})}
    args = ["optimize", "--trials", str(trials), "--storage", url, "--study-name", study,
            *SMALL_FLAGS, "--quiet", "--output-json", "result.json", *extra]  # fmt: skip
    return mptrain_process(args, cwd=cwd, env_extra=env)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _study(url: str, name: str) -> optuna.Study:
    # The driver installed is psycopg2; SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3.
    return optuna.load_study(
        study_name=name, storage=url.replace("postgresql://", "postgresql+psycopg2://", 1)
    )


@pytest.mark.postgres
def test_two_workers_share_one_study_and_their_counts_add_up(postgres_url, tmp_path):
    name = f"farm-{uuid.uuid4().hex[:8]}"
    workers = [_worker(postgres_url, name, 4, tmp_path / f"machine{i}") for i in (1, 2)]
    for proc in workers:
        _finish(proc)

    trials = _study(postgres_url, name).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == len(trials) == 8  # nothing lost, nothing left running
    assert sorted(t.number for t in trials) == list(range(8))  # no trial twice
    per_worker = Counter(t.user_attrs["worker"] for t in finished)
    assert sorted(per_worker.values()) == [4, 4]

    results = [json.loads((tmp_path / f"machine{i}" / "result.json").read_text()) for i in (1, 2)]
    assert [r["trials_run"] for r in results] == [4, 4]
    study = _study(postgres_url, name)

    # The worker that finished last saw every trial finished (the other one may have read
    # the study while a trial of its peer was still running): its best is the study's best.
    def finished_seen(result):
        by_state = result["study_trials_by_state"]
        return by_state.get("complete", 0) + by_state.get("pruned", 0)

    last = max(results, key=finished_seen)
    assert finished_seen(last) == sum(last["study_trials_by_state"].values()) == 8
    assert last["best_trial"] == study.best_trial.number
    assert "postgres@" in last["storage"] or "postgresql" in last["storage"]


@pytest.mark.postgres
def test_a_killed_worker_s_trial_is_failed_and_rerun_when_the_study_resumes(postgres_url, tmp_path):
    name = f"resume-{uuid.uuid4().hex[:8]}"
    heartbeat = {"MPTRAIN_TRIAL_HEARTBEAT_S": "1"}
    # Full sample data and four folds make a trial last long enough to be caught running.
    victim = mptrain_process(
        ["optimize", "--trials", "50", "--storage", postgres_url, "--study-name", name,
         "--source", "sample", "--quiet"],
        cwd=tmp_path, env_extra=heartbeat,
    )  # fmt: skip

    def running_after_one_finished():
        try:
            trials = _study(postgres_url, name).get_trials(deepcopy=False)
        except KeyError:  # the study does not exist yet
            return None
        done = [t for t in trials if t.state in FINISHED]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        return running if done and running and running[0].intermediate_values else None

    try:
        wait_for(running_after_one_finished, timeout=240, what="a finished and a running trial")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)

    before = _study(postgres_url, name).get_trials(deepcopy=False)
    stale = [t for t in before if t.state == optuna.trial.TrialState.RUNNING]
    assert len(stale) == 1, "the killed worker was mid-trial"
    finished_before = sum(t.state in FINISHED for t in before)

    # A worker joining later (after the 2 s grace) fails the stale trial and reruns it.
    _finish(_worker(postgres_url, name, 3, tmp_path / "resumer", env=heartbeat))
    after = _study(postgres_url, name).get_trials(deepcopy=False)
    by_number = {t.number: t for t in after}
    assert by_number[stale[0].number].state == optuna.trial.TrialState.FAIL
    assert not [t for t in after if t.state == optuna.trial.TrialState.RUNNING]
    assert sum(t.state in FINISHED for t in after) == finished_before + 3
    retried = [t for t in after if t.system_attrs.get("failed_trial") == stale[0].number]
    assert len(retried) == 1 and retried[0].state in FINISHED
    assert retried[0].params == stale[0].params


def _mlflow_server(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db",
         "--default-artifact-root", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_trials_are_logged_to_a_real_mlflow_server(cli, tmp_path, monkeypatch):
    server, url = _mlflow_server(tmp_path)
    try:
        wait_for(lambda: server.poll() is not None or _healthy(url), timeout=120,
                 interval=0.5, what="mlflow server")  # fmt: skip
        assert server.poll() is None, "mlflow server exited"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        result = cli("optimize", "--trials", "2", *SMALL_FLAGS, "--output-json", "o.json")
        assert result.exit_code == 0, result.output
        doc = json.loads(Path("o.json").read_text())
        assert doc["warnings"] == [] and doc["mlflow_run_id"]

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("mptrain")
        runs = client.search_runs([experiment.experiment_id])
        parent = next(r for r in runs if r.info.run_id == doc["mlflow_run_id"])
        assert parent.data.tags["mptrain.study"] == doc["study_name"]
        assert parent.data.metrics["best_cv_log_loss"] == pytest.approx(doc["best_value"])
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 2
        numbers = sorted(int(r.data.tags["mptrain.trial_number"]) for r in children)
        assert numbers == [0, 1]
        completed = [r for r in children if r.data.tags["mptrain.trial_state"] == "COMPLETE"]
        assert completed and all("cv_log_loss" in r.data.metrics for r in completed)
        assert all(set(r.data.params) >= {"n_estimators", "learning_rate"} for r in children)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
