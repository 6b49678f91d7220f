"""Fast start: `mptrain --help`, every subcommand's --help, --version and shell-completion
requests never import the heavy libraries (they cost seconds; a completion must be instant).

Each check runs in a fresh interpreter, since this test process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_MODULES = ("xgboost", "lightgbm", "sklearn", "mlflow", "optuna", "polars", "pandas")

# Runs in a child interpreter: each request is one call of the real entry point (as the
# console script makes it); after each we note which heavy modules appeared. Completion
# requests are the env-var protocol a shell's completion script speaks.
_PROBE = r"""
import contextlib, io, json, os, sys

HEAVY = {heavy!r}
requests = json.loads(sys.argv[1])
seen = {{}}
loaded_before = {{m for m in HEAVY if m in sys.modules}}
from marketpredictor_train.cli import main

for argv, env in requests:
    saved = dict(os.environ)
    os.environ.update(env)
    sys.argv = ["mptrain", *argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
    os.environ.clear()
    os.environ.update(saved)
    seen[" ".join(argv) + (" " + json.dumps(env) if env else "")] = {{
        "code": code,
        "heavy": sorted(m for m in HEAVY if m in sys.modules),
        "stdout": out.getvalue()[:2000],
    }}
print(json.dumps({{"before": sorted(loaded_before), "seen": seen}}))
"""


def _probe(requests: list[tuple[list[str], dict[str, str]]]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY_MODULES), json.dumps(requests)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _all_command_paths() -> list[list[str]]:
    """Every command and subcommand of the app, as argv prefixes (groups included)."""
    import typer

    from marketpredictor_train.cli import app

    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def _bash_completion(line: str) -> dict[str, str]:
    words = line.split(" ")
    return {
        "_MPTRAIN_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }


def test_help_and_version_do_not_import_heavy_libraries():
    """`mptrain --help`, `--version` and `mptrain <cmd> --help` for every command
    (found by walking the app, so new commands are covered) stay light."""
    commands = _all_command_paths()
    assert ["train"] in commands
    requests = [(["--help"], {}), (["--version"], {})]
    requests += [([*path, "--help"], {}) for path in commands]
    result = _probe(requests)

    assert result["before"] == []
    for request, outcome in result["seen"].items():
        assert outcome["code"] == 0, f"{request} exited {outcome['code']}"
        assert outcome["heavy"] == [], f"`mptrain {request}` imported {outcome['heavy']}"
    train_help = result["seen"]["train --help"]["stdout"]
    assert train_help.startswith("Usage: mptrain train") and "--model-type" in train_help


COMPLETION_LINES = (
    "mptrain ",
    "mptrain train --",
    "mptrain train --model-type ",
    "mptrain train --period ",
    "mptrain predict --version ",
    "mptrain rollback --version ",
)


@pytest.mark.slow
def test_completion_requests_do_not_import_heavy_libraries():
    """Completing commands, options and values (incl. model types from the entry points
    and versions from the model store) answers without the heavy libraries."""
    # A version in ./models (the working directory is the test's own) to complete from.
    Path("models").mkdir()
    Path("models/model_20250120_020015.bin").write_bytes(b"")
    result = _probe([([], _bash_completion(line)) for line in COMPLETION_LINES])

    assert result["before"] == []
    outcomes = list(result["seen"].values())
    assert len(outcomes) == len(COMPLETION_LINES)
    for line, outcome in zip(COMPLETION_LINES, outcomes, strict=True):
        assert outcome["code"] == 0, line
        assert outcome["heavy"] == [], f"completing {line!r} imported {outcome['heavy']}"
        assert outcome["stdout"].strip(), f"no completions offered for {line!r}"
    assert "20250120_020015" in outcomes[-1]["stdout"].split()
    assert "20250120_020015" in outcomes[-2]["stdout"].split()  # predict --version
