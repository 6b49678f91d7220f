"""Meta-tests of the command line: every command has help text, and every command and every
option that `--help` shows is documented in README.md (so the two cannot drift apart)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from marketpredictor_train.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[tuple[str, typer.core.TyperCommand | typer.core.TyperGroup]]:
    """('mptrain', root), ('mptrain train', ...), ('mptrain data download', ...), ..."""
    found = []

    def walk(command, path: str) -> None:
        found.append((path, command))
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not sub.hidden:
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "mptrain")
    return found


COMMANDS = _commands()
SUBCOMMANDS = [(path, cmd) for path, cmd in COMMANDS if path != "mptrain"]


def _shown_options(command) -> list[str]:
    """The long spellings --help lists for a command (both sides of --x/--no-x pairs)."""
    opts = []
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        opts += [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
    return opts


def _documented(token: str, text: str) -> bool:
    # A whole token: `--model` must not count as documented because `--model-type` is.
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def test_the_app_has_the_seeds_commands():
    paths = {path for path, _ in SUBCOMMANDS}
    assert {"mptrain train", "mptrain rollback", "mptrain models-list"} <= paths


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_text(path: str, command):
    assert (command.help or "").strip(), f"`{path}` has no help text"
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            assert (param.help or "").strip(), f"`{path}` option {param.opts} has no help"


@pytest.mark.parametrize("path, command", SUBCOMMANDS, ids=[p for p, _ in SUBCOMMANDS])
def test_every_command_is_in_the_readme(path: str, command):
    mentioned = _documented(path, README.read_text(encoding="utf-8"))
    assert mentioned, f"README.md does not mention `{path}`"


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_shown_in_help_is_in_the_readme(path: str, command):
    readme = README.read_text(encoding="utf-8")
    missing = [opt for opt in _shown_options(command) if not _documented(opt, readme)]
    assert not missing, f"README.md does not document these options of `{path}`: {missing}"


def test_the_check_notices_an_undocumented_option():
    assert _documented("--model-type", "mptrain train --model-type rf")
    assert not _documented("--model", "mptrain train --model-type rf")
    assert not _documented("--trials", "use --trials-per-worker")
