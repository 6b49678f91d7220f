"""The ways users start mptrain: the console script, python -m, --version, no arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketpredictor_train import __version__


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"mptrain {__version__}"


def test_version_flag(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_no_arguments_shows_help_and_exits_0(cli):
    result = cli()
    assert result.exit_code == 0
    assert "train" in result.output


def test_unknown_command_exits_3(cli):
    result = cli("trian")
    assert result.exit_code == 3
    assert "trian" in result.output


@pytest.mark.slow  # a real train in a new process (~15 s)
def test_a_heavy_command_ends_quickly_with_everything_it_wrote(tmp_path):
    """After a train the process skips Python's module teardown (seconds); the exit
    code, the JSON document, the end of the log file, the MLflow run and the model file
    are all complete."""
    import json
    import os
    import sqlite3

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MPTRAIN_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "marketpredictor_train", "train", "--source", "sample"]
        + ["--force", "--output-json", "r.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    document = json.loads((tmp_path / "r.json").read_text())
    assert "Total " in out.stdout + out.stderr  # the console's last line was flushed
    assert document["exit_code"] == 0 and document["promoted"] is True
    log_lines = (tmp_path / "logs" / "training.log").read_text().splitlines()
    assert "MLflow alias" in json.loads(log_lines[-1])["message"]  # the last record is in
    assert (tmp_path / "models" / f"model_{document['version']}.bin").is_file()
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM runs")]
    assert statuses == ["FINISHED"]


def test_a_watched_process_exits_normally_so_profilers_write_their_results():
    """cProfile (sys.monitoring from Python 3.12), debuggers and coverage tools write
    what they collected after the program returns: the quick exit then stands aside."""
    from marketpredictor_train.cli import _monitored

    monitoring = sys.monitoring
    tool = monitoring.PROFILER_ID
    if monitoring.get_tool(tool) is not None:
        pytest.skip("a profiler already watches this test process")
    assert not _monitored()
    monitoring.use_tool_id(tool, "mptrain-test")
    try:
        assert _monitored()
    finally:
        monitoring.free_tool_id(tool)
    assert not _monitored()


# A light command through the console entry point, then the script's own lines.
_AFTER_MAIN = (
    "import os, sys, warnings\n"
    "from marketpredictor_train.cli import main\n"
    "sys.argv = ['mptrain', '--version']\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
)


def _run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )


_SHOW_ALLOCATOR = (
    _AFTER_MAIN + "print(repr(os.environ.get('_RJEM_MALLOC_CONF')), 'polars' in sys.modules)\n"
)


@pytest.mark.parametrize("given", [None, "dirty_decay_ms:5000"])
def test_the_cli_sets_polars_allocator_options_before_polars_loads_unless_given(given):
    import os

    from marketpredictor_train.cli import POLARS_ALLOCATOR

    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if given is not None:
        env["_RJEM_MALLOC_CONF"] = given
    out = _run_script(_SHOW_ALLOCATOR, env)
    assert out.returncode == 0, out.stderr
    # set while Polars is not yet loaded: jemalloc reads it once, when Polars loads
    assert out.stdout.splitlines()[-1].split() == [repr(given or POLARS_ALLOCATOR), "False"]


_BOOTSTRAP_AFTER_MAIN = _AFTER_MAIN + (
    "import numpy as np\n"
    "warnings.simplefilter('error')\n"
    "from marketpredictor_train.validation.bootstrap import day_blocks, return_blocks\n"
    "rng = np.random.default_rng(0)\n"
    "blocks = return_blocks(rng.standard_normal((300, 2)) * 0.01, resamples=50)\n"
    "days = day_blocks(np.repeat(np.arange(120), 3), horizon=5, resamples=50)\n"
    "print(blocks.draws.shape, days.draws.shape, 'numba' in sys.modules)\n"
)


def test_the_cli_runs_the_block_bootstraps_without_loading_numba():
    import os

    env = {k: v for k, v in os.environ.items() if k != "ARCH_DISABLE_NUMBA"}
    out = _run_script(_BOOTSTRAP_AFTER_MAIN, env)
    assert out.returncode == 0, out.stderr[-2000:]  # no PerformanceWarning either
    assert out.stdout.splitlines()[-1] == "(50, 300) (50, 120) False"
