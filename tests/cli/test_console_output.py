"""What a person sees on stderr: progress bars only at an interactive terminal and never
with --quiet, log lines that keep flowing above the bars, and NO_COLOR honoured."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest
import structlog
from rich.console import Console

from marketpredictor_train.cli import _console
from marketpredictor_train.cli._progress import ProgressBars, wants_progress_bars
from marketpredictor_train.errors import DataError
from marketpredictor_train.progress import ProgressEvent

# An SGR sequence that sets a colour (30-37, 90-97 foreground, 38;... extended, 40-47 bg).
COLOUR_CODE = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-8]|4[0-7]|9[0-7]|10[0-7])(?:;\d+)*m")


class FakeTTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _fresh_consoles():
    # The consoles are built once per process from the environment; tests change it.
    cached = (_console.err_console, _console.out_console)
    for factory in cached:
        factory.cache_clear()
    yield
    for factory in cached:
        factory.cache_clear()


def _terminal(stream: io.StringIO | None = None) -> Console:
    return Console(
        file=stream if stream is not None else FakeTTY(),
        force_terminal=True,
        force_interactive=True,
        width=100,
    )


def test_bars_are_drawn_per_stage_with_counts():
    console = _terminal()
    bars = ProgressBars(console)
    bars(ProgressEvent("download", 3, 10, "MSFT"))
    bars(ProgressEvent("trials", 4, None, "best accuracy 0.531"))
    bars.close()
    out = console.file.getvalue()
    assert "Downloading prices: MSFT" in out
    assert "3/10" in out
    assert "Optimizing: best accuracy 0.531" in out


def test_a_finished_stage_leaves_the_display():
    console = _terminal()
    bars = ProgressBars(console)
    bars(ProgressEvent("features", 0, 1, "building features"))
    bars(ProgressEvent("features", 1, 1, "features built"))
    assert bars._tasks == {}
    bars(ProgressEvent("download", 1, 2))
    assert set(bars._tasks) == {"download"}
    bars.close()


def test_bars_only_for_an_interactive_terminal_and_not_quiet():
    assert wants_progress_bars(_terminal(), quiet=False)
    assert not wants_progress_bars(_terminal(), quiet=True)
    # A pipe or CI log stays bar-free even when FORCE_COLOR makes Rich call it a terminal.
    assert not wants_progress_bars(_terminal(io.StringIO()), quiet=False)
    dumb = Console(file=FakeTTY(), force_terminal=True, _environ={"TERM": "dumb"})
    assert not wants_progress_bars(dumb, quiet=False)


def test_log_lines_print_above_the_bars(monkeypatch: pytest.MonkeyPatch):
    """While bars are live, the console log handler writes through Rich's stderr proxy
    (which prints above the bars), and to the real stream again afterwards."""
    from rich.file_proxy import FileProxy

    from marketpredictor_train.logconfig import configure_logging

    stream = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stream)
    console = Console(stderr=True, force_terminal=True, force_interactive=True, width=100)
    configure_logging(level="INFO", logs_dir=None, console=console)
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_mptrain", False)]

    bars = ProgressBars(console)
    try:
        bars(ProgressEvent("download", 1, 4, "AAPL"))
        stream_while_live = handler.stream
        structlog.get_logger("test").info("Batch downloaded", tickers=2)
    finally:
        bars.close()
    assert isinstance(stream_while_live, FileProxy)
    assert handler.stream is stream
    out = stream.getvalue()
    assert "Batch downloaded" in out
    assert "Downloading prices: AAPL" in out


def _capture_progress(monkeypatch: pytest.MonkeyPatch) -> list:
    """Replace the library's train() by one that records the callback it was given, sends
    one event, and stops the run with a data error (exit 1)."""
    from marketpredictor_train import api

    seen: list = []

    def fake_train(settings, *, progress=None):
        seen.append(progress)
        if progress is not None:
            progress(ProgressEvent("download", 1, 5, "AAPL"))
        raise DataError("stop here")

    monkeypatch.setattr(api, "train", fake_train)
    return seen


def test_train_draws_bars_at_a_terminal(cli, monkeypatch: pytest.MonkeyPatch):
    seen = _capture_progress(monkeypatch)
    console = _terminal()
    monkeypatch.setattr(_console, "err_console", lambda: console)
    result = cli("train", "--source", "sample")
    assert result.exit_code == 1
    (progress,) = seen
    assert isinstance(progress, ProgressBars)
    assert "Downloading prices: AAPL" in console.file.getvalue()
    assert progress._progress is None  # the display was closed with the run


@pytest.mark.parametrize("how", ["--quiet", "-q", "MPTRAIN_QUIET"])
def test_train_quiet_draws_no_bars(cli, monkeypatch: pytest.MonkeyPatch, how: str):
    seen = _capture_progress(monkeypatch)
    console = _terminal()
    monkeypatch.setattr(_console, "err_console", lambda: console)
    if how == "MPTRAIN_QUIET":
        monkeypatch.setenv("MPTRAIN_QUIET", "true")
        result = cli("train", "--source", "sample")
    else:
        result = cli("train", "--source", "sample", how)
    assert result.exit_code == 1
    assert seen == [None]
    assert "Downloading prices" not in console.file.getvalue()


def test_train_draws_no_bars_when_stderr_is_not_a_terminal(cli, monkeypatch):
    seen = _capture_progress(monkeypatch)
    result = cli("train", "--source", "sample")  # CliRunner's stderr is a pipe
    assert result.exit_code == 1
    assert seen == [None]


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_removes_colours_from_errors(cli, monkeypatch, no_color: bool):
    monkeypatch.setenv("FORCE_COLOR", "1")  # a colour terminal, as far as Rich knows
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    result = cli("train", "--period", "7y")
    assert result.exit_code == 3
    assert "Error:" in result.stderr
    assert bool(COLOUR_CODE.search(result.stderr)) is not no_color


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_removes_colours_from_log_lines(monkeypatch, no_color: bool):
    from marketpredictor_train.logconfig import configure_logging

    monkeypatch.setenv("FORCE_COLOR", "1")
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(level="INFO", logs_dir=None, console=_console.err_console())
    structlog.get_logger("test").warning("Ticker dropped", ticker="XYZ")
    out = stream.getvalue()
    assert "Ticker dropped" in out
    assert bool(COLOUR_CODE.search(out)) is not no_color
