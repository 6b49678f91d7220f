"""Every CLI option is the setting of the same name: a command hands its options to
Settings as they are, so an option's name, choices, bounds and shown default must be the
setting's. (The CLI declares its options itself because importing config, and with it
pydantic, would slow every --help and shell completion.)"""

from __future__ import annotations

import re
import typing
from typing import Any, Literal

import pytest
import typer
from annotated_types import Ge, Gt, Le, Lt

from marketpredictor_train.cli import app
from marketpredictor_train.config import Settings

# Options that are not settings: what to act on, or how to show the result.
NOT_SETTINGS = {
    "config",
    "output_json",
    "json_output",
    "version",
    "model_file",
    "reason",
    "prune",
    "full",
    "verify",
    "min_history",
    "date",
    "all_dates",
    "output",
    "start",
    "every",
    "workers",
    "help",
    "install_completion",
    "show_completion",
}


def _commands() -> list[tuple[str, typer.core.TyperCommand]]:
    root = typer.main.get_command(app)
    found = []

    def walk(group: Any, path: str) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, f"{path} {name}".strip())
            else:
                found.append((f"{path} {name}".strip(), command))

    walk(root, "")
    return found


OPTIONS = [
    (path, param)
    for path, command in _commands()
    for param in command.params
    if param.name not in NOT_SETTINGS
]


def _literal_args(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        found = _literal_args(arg)
        if found:
            return found
    return None


def _bounds(name: str) -> tuple[float | None, float | None]:
    low = high = None
    for item in Settings.model_fields[name].metadata:
        if isinstance(item, Ge | Gt):
            low = item.ge if isinstance(item, Ge) else item.gt
        if isinstance(item, Le | Lt):
            high = item.le if isinstance(item, Le) else item.lt
    return low, high


def test_commands_and_options_were_found():
    assert {path for path, _ in OPTIONS} >= {"train", "validate", "optimize", "data check"}
    assert len(OPTIONS) > 60


@pytest.mark.parametrize(("path", "param"), OPTIONS, ids=[f"{p}:{o.name}" for p, o in OPTIONS])
def test_option_is_the_setting_of_the_same_name(path, param):
    assert param.name in Settings.model_fields, (
        f"`mptrain {path}` option {param.opts[0]} sets no setting named {param.name!r}"
    )
    field = Settings.model_fields[param.name]
    choices = _literal_args(param.type_descriptor.annotation)
    if choices is not None:
        assert choices == _literal_args(field.annotation), f"{param.opts[0]} choices"
    low, high = _bounds(param.name)
    if param.min is not None or low is not None:
        assert param.min == low, f"{param.opts[0]}: CLI min {param.min}, setting {low}"
    if param.max is not None or high is not None:
        assert param.max == high, f"{param.opts[0]}: CLI max {param.max}, setting {high}"
    shown = re.search(r"\[default: ([^\]]+)\]", param.help or "")
    default = field.get_default(call_default_factory=False)
    if shown and isinstance(default, int | float | str) and not isinstance(default, bool):
        value = shown.group(1)
        if isinstance(default, float):
            assert float(value.rstrip("%")) == pytest.approx(default), param.opts[0]
        else:
            assert value == str(default), param.opts[0]
