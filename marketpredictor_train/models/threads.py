"""How many threads a fit uses: the cores this process may actually run on (CPU affinity
and a cgroup CPU quota, not the machine's core count), capped by the data size, or what
``--threads`` / ``MPTRAIN_THREADS`` say. The built-in model types read :func:`fit_threads`.

OpenMP threads that spin while they wait (the default of the runtimes XGBoost, LightGBM
and scikit-learn load) take the CPU away from every other process on a shared machine,
and from the other libraries in this one, so the wait policy is passive unless the user
set one."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

# Below this many training rows per thread, a tree fit spends more time handing work
# between threads than doing it, and on a busy machine more still waiting for a core
# (100 XGBoost rounds on 47k rows: 4.7 s with one thread, 4.8 s with two, on 2 cores
# shared with other work).
ROWS_PER_THREAD = 50_000
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")

# A fixed count (using_threads), or a share of threads that grows while it runs
# (SharedThreads.party).
_threads: ContextVar[int | Callable[[], int] | None] = ContextVar(
    "mptrain_fit_threads", default=None
)


def passive_openmp() -> None:
    """OMP_WAIT_POLICY=PASSIVE unless already set; effective only before the first OpenMP
    library loads (the CLI and the pipelines call it before importing any)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, further capped by a cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def cgroup_cpu_quota(
    v2: Path = CGROUP_V2_CPU_MAX,
    v1_quota: Path = CGROUP_V1_QUOTA,
    v1_period: Path = CGROUP_V1_PERIOD,
) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited
    or unknown. cgroup v2 ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``."""
    try:
        quota, period = v2.read_text(encoding="ascii").split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text(encoding="ascii").strip())
        period_us = int(v1_period.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def choose_threads(requested: int | None, n_rows: int | None = None) -> int:
    """``requested`` (--threads) when given; else the available cores, no more than one
    per ROWS_PER_THREAD training rows (at least one)."""
    if requested is not None:
        return requested
    cores = available_cpus()
    if n_rows is None:
        return cores
    return max(1, min(cores, n_rows // ROWS_PER_THREAD))


def fit_threads() -> int:
    """The thread count of the fit in progress (set by :func:`using_threads`, or its
    current share in :meth:`SharedThreads.party`), else every available core. A fit that
    reads it again between boosting rounds takes the threads another fit gave back."""
    chosen = _threads.get()
    if chosen is None:
        return available_cpus()
    return chosen() if callable(chosen) else chosen


@contextmanager
def using_threads(threads: int) -> Iterator[int]:
    """Fits inside this block use ``threads`` threads."""
    token = _threads.set(threads)
    try:
        yield threads
    finally:
        _threads.reset(token)


class SharedThreads:
    """``total`` threads shared by fits running at the same time, one per party (a thread
    of this process): each running party gets an even share, and when one ends the
    others' shares grow, taken at their next boosting round (XGBoost reads
    :func:`fit_threads` between rounds). Two XGBoost fits on one thread each finish
    sooner than one after the other on two (boosting rounds do not scale with threads),
    and the last one running gets every thread. Tuning fits its folds this way."""

    def __init__(self, total: int, parties: int) -> None:
        self.total = max(1, total)
        self._running = list(range(parties))
        self._lock = threading.Lock()

    def threads(self, party: int) -> int:
        with self._lock:
            running = self._running
            if party not in running:
                return self.total
            share, extra = divmod(self.total, len(running))
            return max(1, share + (running.index(party) < extra))

    def done(self, party: int) -> None:
        with self._lock:
            if party in self._running:
                self._running.remove(party)

    @contextmanager
    def party(self, party: int) -> Iterator[None]:
        """Fits inside this block, in this thread, use ``party``'s share; the share is
        given back when the block ends."""
        token = _threads.set(lambda: self.threads(party))
        try:
            yield
        finally:
            self.done(party)
            _threads.reset(token)
