"""A reader that goes away early (`mptrain ... | head -1`, `2>&1 | true`) costs the run
neither its --output-json document nor its exit code, and prints no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_with_closed_outputs(*args: str, read_first_line: bool = False) -> int:
    """Run mptrain with stdout and stderr on a pipe whose reader is gone (closed at once,
    or after the first line, as `head -1` does); its exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPTRAIN_")}
    env.update({"PYTHONPATH": str(REPO_ROOT), "MPTRAIN_MLFLOW": "false", "NO_COLOR": "1"})
    read, write = os.pipe()
    with subprocess.Popen(
        [sys.executable, "-m", "marketpredictor_train", *args],
        cwd=Path.cwd(),
        env=env,
        stdout=write,
        stderr=write,
    ) as proc:
        os.close(write)
        if read_first_line:
            with os.fdopen(read, "rb") as reader:
                reader.readline()
        else:
            os.close(read)
        return proc.wait(timeout=300)


@pytest.mark.slow  # a real mptrain process
def test_a_failing_command_keeps_its_exit_code_and_json_when_nobody_reads_it():
    Path("mptrain.toml").write_text("min_accuracy = 'high'\n")
    assert run_with_closed_outputs("train", "--source", "sample", "--output-json", "out.json") == 3
    doc = json.loads(Path("out.json").read_text())
    assert (doc["status"], doc["exit_code"]) == ("failed", 3)


def test_json_on_stdout_to_a_closed_pipe_keeps_the_exit_code():
    Path("models").mkdir()
    assert run_with_closed_outputs("models-list", "--json") == 0


@pytest.mark.slow  # one real dry-run train on the sample data (~8 s)
def test_head_1_on_a_train_keeps_its_exit_code_and_json():
    status = run_with_closed_outputs(
        "train", "--source", "sample", "--dry-run", "--output-json", "out.json",
        read_first_line=True,
    )  # fmt: skip
    doc = json.loads(Path("out.json").read_text())
    assert doc["status"] == "dry_run"
    assert status == doc["exit_code"] and status in (0, 2)
