"""Shell completion for bash, zsh and fish: the scripts Typer shows and installs for the
user's shell, and the answers the CLI gives through the completion env-var protocol."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SHELLS = ("bash", "zsh", "fish")
# Each run starts a fresh interpreter under a shell: bash is in the fast subset, the
# other shells run with the slow tests.
EVERY_SHELL = [s if s == "bash" else pytest.param(s, marks=pytest.mark.slow) for s in SHELLS]
# What identifies each shell's script (Typer's templates for prog name "mptrain").
SCRIPT_MARKERS = {
    "bash": "complete -o default -F _mptrain_completion mptrain",
    "zsh": "#compdef mptrain",
    "fish": "complete --command mptrain",
}
BUILTIN_MODEL_TYPES = {"xgb", "rf", "lgb"}
ENTRY_POINT_GROUP = "marketpredictor_train.model_types"


def _under_shell(shell: str, args: list[str], tmp_path: Path, **env: str):
    """Run `python -m marketpredictor_train ARGS` as a child of a process named SHELL.

    Typer finds the user's shell by the name of the parent process (shellingham). Only
    bash is sure to be installed, so zsh and fish are bash under their name; `; exit`
    stops bash from exec-ing the command, which would remove it from the ancestry."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "shells"
    bin_dir.mkdir(exist_ok=True)
    fake_shell = bin_dir / shell
    if not fake_shell.exists():
        fake_shell.symlink_to(bash)
    command = [sys.executable, "-m", "marketpredictor_train", *args]
    return subprocess.run(
        [str(fake_shell), "-c", '"$@"; exit $?', shell, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("shell", EVERY_SHELL)
def test_show_completion_prints_the_script_of_the_users_shell(shell: str, tmp_path: Path):
    proc = _under_shell(shell, ["--show-completion"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert SCRIPT_MARKERS[shell] in proc.stdout
    others = [SCRIPT_MARKERS[s] for s in SHELLS if s != shell]
    assert not any(marker in proc.stdout for marker in others)
    if shell == "bash":
        check = subprocess.run(["bash", "-n"], input=proc.stdout, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shell", "script_path", "rc_file"),
    [
        ("bash", ".bash_completions/mptrain.sh", ".bashrc"),
        ("zsh", ".zfunc/_mptrain", ".zshrc"),
        ("fish", ".config/fish/completions/mptrain.fish", None),
    ],
)
def test_install_completion_writes_the_script_for_the_users_shell(
    shell: str, script_path: str, rc_file: str | None, tmp_path: Path
):
    home = tmp_path / "home"
    home.mkdir()
    proc = _under_shell(shell, ["--install-completion"], tmp_path, HOME=str(home))
    assert proc.returncode == 0, proc.stderr
    assert f"{shell} completion installed" in proc.stdout
    assert SCRIPT_MARKERS[shell] in (home / script_path).read_text()
    if rc_file is not None:
        assert script_path.split("/")[0] in (home / rc_file).read_text()


@pytest.mark.parametrize("shell", EVERY_SHELL)
def test_source_instruction_names_the_shell_explicitly(shell: str):
    """`_MPTRAIN_COMPLETE=source_<shell> mptrain` prints a shell's script without any
    detection (for shells started by other programs, or to write the file by hand)."""
    proc = subprocess.run(
        [sys.executable, "-m", "marketpredictor_train"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "_MPTRAIN_COMPLETE": f"source_{shell}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert SCRIPT_MARKERS[shell] in proc.stdout


def _complete(shell: str, line: str) -> list[str]:
    """Ask the CLI for completions of ``line`` the way SHELL's completion script does."""
    from typer.testing import CliRunner

    from marketpredictor_train.cli import app

    if shell == "bash":
        env = {"COMP_WORDS": line, "COMP_CWORD": str(len(line.split(" ")) - 1)}
    elif shell == "zsh":
        env = {"_TYPER_COMPLETE_ARGS": line}
    else:
        env = {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    env["_MPTRAIN_COMPLETE"] = f"complete_{shell}"
    result = CliRunner().invoke(app, [], env=env, prog_name="mptrain")
    assert result.exit_code == 0, result.output
    if shell == "zsh":
        # zsh gets an _arguments spec: _arguments '*: :(("lgb" "rf" "xgb"))'
        return [part.strip('"') for part in result.stdout.split("((", 1)[1].split("))")[0].split()]
    # fish lines are "value<TAB>help"
    return [line.split("\t")[0] for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("shell", EVERY_SHELL)
def test_model_type_values_complete_in_every_shell(shell: str):
    assert set(_complete(shell, "mptrain train --model-type ")) >= BUILTIN_MODEL_TYPES


def test_model_type_completion_filters_by_prefix():
    assert _complete("bash", "mptrain train --model-type l") == ["lgb"]


def test_model_type_completion_offers_installed_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A third-party package registering a type in the entry-point group shows up, by
    name alone (its code is not imported for a completion)."""
    dist = tmp_path / "plugins" / "mptrain_catboost_demo-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mptrain-catboost-demo\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ncatboost = mptrain_catboost_demo_not_importable:CatBoost\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))

    offered = set(_complete("bash", "mptrain train --model-type "))
    assert offered == BUILTIN_MODEL_TYPES | {"catboost"}


def test_subcommands_and_options_complete():
    commands = _complete("bash", "mptrain ")
    assert {"train", "rollback", "models-list"} <= set(commands)
    assert {"--model-type", "--models-dir"} <= set(_complete("bash", "mptrain train --model"))
    assert set(_complete("bash", "mptrain train --period ")) == {"1y", "2y", "3y", "5y", "10y"}
