"""The mptrain command line: a thin Typer skin over marketpredictor_train.api."""

from __future__ import annotations

import marketpredictor_train.cli.backtest  # noqa: F401  (registers the command)
import marketpredictor_train.cli.data  # noqa: F401  (registers the command)
import marketpredictor_train.cli.models_list  # noqa: F401  (registers the command)
import marketpredictor_train.cli.optimize  # noqa: F401  (registers the command)
import marketpredictor_train.cli.predict  # noqa: F401  (registers the command)
import marketpredictor_train.cli.rollback  # noqa: F401  (registers the command)
import marketpredictor_train.cli.validate  # noqa: F401  (registers the command)
from marketpredictor_train.cli import train  # noqa: F401  (registers the command)
from marketpredictor_train.cli._app import app

__all__ = ["app", "main"]


# Libraries whose teardown at interpreter exit takes seconds (module and object clean-up
# of MLflow, SQLAlchemy, scikit-learn, SciPy...) once a command has loaded them.
_SLOW_TO_TEAR_DOWN = ("mlflow", "xgboost", "lightgbm", "sklearn")

# jemalloc's options (read once, when Polars loads; a value set by the user wins).
POLARS_ALLOCATOR = "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:200"


def main() -> None:
    """Console entry point. After a command that loaded the heavy libraries, the process
    ends without Python's module teardown (2-3 s after a train), once everything the
    command wrote is out: see :func:`_leave`."""
    import os

    # Before any OpenMP library loads (see models/threads.py; kept import-free here).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Before Polars loads: its allocator (jemalloc) hands freed pages back to the system
    # within a fraction of a second, from a background thread, instead of keeping them
    # for ten seconds; the table build's freed memory is then not still held while the
    # model fits.
    os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR)
    # arch loads numba (and LLVM) only for its JIT-compiled recursions, none of which
    # the block bootstraps use (their sampler is compiled): without it a run holds about
    # 50 MB less and its imports take 1.5 s less. A value set by the user wins.
    os.environ.setdefault("ARCH_DISABLE_NUMBA", "1")
    try:
        app(prog_name="mptrain")
    except SystemExit as exc:
        _leave(exc)
        raise


def _leave(exc: SystemExit) -> None:
    """End the process now with the command's exit code, when that loses nothing: the
    exit handlers run first (log files flushed and closed, temporary folders removed),
    then stdout and stderr are flushed; only the interpreter's own teardown is skipped.
    Returns (a normal exit follows) for a light command, a non-integer code, a thread the
    normal exit would wait for, or a profiler, debugger or coverage tool watching the
    process (some write their results after the program returns, not at exit)."""
    import sys
    import threading

    code = 0 if exc.code is None else exc.code
    if not isinstance(code, int) or not any(m in sys.modules for m in _SLOW_TO_TEAR_DOWN):
        return
    if sys.getprofile() is not None or sys.gettrace() is not None or _monitored():
        return
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    import atexit
    import contextlib
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe: what it did not take is lost with a normal exit too
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _monitored() -> bool:
    """Whether a profiler, debugger or coverage tool uses sys.monitoring (cProfile does
    from Python 3.12)."""
    import sys

    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return False
    tools = (monitoring.DEBUGGER_ID, monitoring.COVERAGE_ID, monitoring.PROFILER_ID)
    return any(monitoring.get_tool(tool) is not None for tool in tools)
