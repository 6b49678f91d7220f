"""Ctrl-C: a command stops with exit 130 and says what it leaves behind, on the console
and in its --output-json document, without a traceback."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import optuna
import pytest

from marketpredictor_train.cli._common import run_reported
from marketpredictor_train.errors import EXIT_INTERRUPTED, Interrupted
from tests.tuning.helpers import mptrain_process, wait_for


def test_an_interrupted_command_writes_its_failure_document(tmp_path: Path):
    def run():
        raise KeyboardInterrupt

    out = tmp_path / "result.json"
    with pytest.raises(Interrupted) as caught:
        run_reported("train", out, run, lambda result: None)
    doc = json.loads(out.read_text())

    assert caught.value.exit_code == EXIT_INTERRUPTED == 130
    assert (doc["status"], doc["exit_code"], doc["promoted"]) == ("failed", 130, False)
    assert doc["error"]["type"] == "Interrupted"
    assert doc["error"]["message"] == "train interrupted (Ctrl-C)"
    assert "production is the model it was before this run" in doc["error"]["hint"]


@pytest.mark.slow
def test_ctrl_c_during_optimize_exits_130_with_one_line_per_stopped_trial(tmp_path: Path):
    """A real SIGINT while a trial's folds are fitted side by side (two threads)."""
    worker = mptrain_process(
        ["optimize", "--source", "sample", "--trials", "40", "--threads", "2",
         "--study-name", "ctrl-c", "--output-json", "result.json"],
        cwd=tmp_path,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
    reader.start()
    storage = f"sqlite:///{tmp_path / 'models' / 'optuna.db'}"

    def running_after_one_finished() -> bool:
        if not any("Trial finished" in line for line in lines):
            return False
        trials = optuna.load_study(study_name="ctrl-c", storage=storage).get_trials()
        return any(t.state == optuna.trial.TrialState.RUNNING for t in trials)

    try:
        wait_for(running_after_one_finished, timeout=180, what="a trial running")
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=60)
    finally:
        worker.kill()
    reader.join(timeout=10)
    output = "".join(lines)
    doc = json.loads((tmp_path / "result.json").read_text())

    assert code == 130, output[-2000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert "Error: optimize interrupted (Ctrl-C)" in output
    assert "The study keeps every trial that finished" in output
    assert (doc["exit_code"], doc["error"]["type"]) == (130, "Interrupted")
    stopped = optuna.load_study(study_name="ctrl-c", storage=storage).trials[-1]
    assert stopped.state == optuna.trial.TrialState.FAIL  # Optuna's record of it
    assert f"Trial {stopped.number} stopped by Ctrl-C" in output
