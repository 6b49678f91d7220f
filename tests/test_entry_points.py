"""The ways users start mptrain: the console script, python -m, --version, no arguments."""

from __future__ import annotations

import subprocess
import sys

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
