"""Benchmark: what `mptrain backtest` costs beside the model fits it cannot avoid.

Prints, side by side, each measured in one run of this script (interleaved, ``--repeat``
times):

* backtest: a whole ``mptrain backtest --source sample --every 1w --workers N`` process
  (2 years of weekly steps, 105 on the bundled sample) with an empty step cache: wall
  time, CPU seconds (user + system of it and its workers), peak RSS, and the median
  seconds of one step in a worker;
* floor: a bare process that starts N worker processes which only import XGBoost and make
  each step's two fits (the calibration fit on the training part without its last fold,
  and the model's fit on the whole training part) with the seed's parameters, on the
  sample's own feature rows of each step's training window: the fits a replay of `train`
  must make, and nothing else;
* cached: the same backtest run again, every step read from the cache (the replay,
  scoring and report alone).

Run: ``uv run python benchmarks/bench_backtest.py`` (``--help`` for the options). The
numbers move with machine load; the ratio of runs made side by side is what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_train import Child, clean_env, run_child  # this folder, beside this script

FLOOR = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

def _init(matrix):
    global xgboost, X, y
    import numpy as np
    import xgboost
    data = np.load(matrix)
    X, y = data["X"], data["y"]

def _fit(job):
    start = time.perf_counter()
    for rows in job["fits"]:
        xgboost.XGBClassifier(
            n_estimators=100, max_depth=6, learning_rate=0.1, eval_metric="logloss",
            objective="binary:logistic", tree_method="hist", random_state=42, n_jobs=1,
        ).fit(X[rows], y[rows], verbose=False)
    return time.perf_counter() - start

if __name__ == "__main__":
    import json
    jobs = json.load(open(sys.argv[1]))
    matrix, workers = sys.argv[2], int(sys.argv[3])
    os.environ["OMP_NUM_THREADS"] = "1"
    with ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
        initargs=(matrix,),
    ) as pool:
        seconds = list(pool.map(_fit, jobs))
    print(json.dumps(seconds))
"""


def run_backtest(work: Path, cache: Path, workers: int) -> tuple[Child, dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    result = work / "result.json"
    options = f"--source sample --every 1w --workers {workers} --quiet".split()
    cmd = [sys.executable, "-m", "marketpredictor_train", "backtest", *options]
    cmd += ["--cache-dir", str(cache), "--output-json", str(result)]
    child = run_child(cmd, cwd=work, env=clean_env())
    if child.code != 0:
        raise SystemExit(f"backtest failed (exit {child.code})")
    return child, json.loads(result.read_text())


def floor_jobs(doc: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """Each step's two fits as row indices into the sample's labelled feature table: the
    step's training window (its last ``n_train`` rows up to ``train_end``) and, for the
    calibration fit, that window without its last purged walk-forward fold."""
    import numpy as np

    from marketpredictor_train.config import Settings
    from marketpredictor_train.data import load_ohlcv
    from marketpredictor_train.dataset.table import labelled_features
    from marketpredictor_train.pipelines.backtest import LOAD_PERIOD, spec_columns
    from marketpredictor_train.pipelines.common import feature_spec
    from marketpredictor_train.tuning.cv import walk_forward_folds

    settings = Settings(source="sample")
    spec = feature_spec(settings)
    table = labelled_features(
        load_ohlcv(settings.model_copy(update={"period": LOAD_PERIOD})).frame,
        spec,
        horizon=settings.horizon,
    )
    matrix = folder / "features.npz"
    X = table.select(spec_columns(spec)).to_numpy().astype(np.float32)
    y = table.get_column("label").to_numpy().astype(np.int64)
    np.savez(matrix, X=X, y=y)
    dates = table.get_column("date").to_numpy().astype("datetime64[D]")
    by_date = np.argsort(dates, kind="stable")
    jobs = []
    for step in doc["steps"]:
        end = np.datetime64(step["train_end"], "D")
        window = by_date[dates[by_date] <= end][-step["n_train"] :]
        window = np.sort(window)
        fold = walk_forward_folds(
            dates[window], y[window], n_folds=settings.cv_folds, purge_gap=settings.purge_gap
        )[-1]
        jobs.append({"fits": [window[fold.train_rows].tolist(), window.tolist()]})
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each process")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"# bench_backtest: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"--workers {args.workers}, load average at start {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as tmp:
        root = Path(tmp)
        script = root / "floor.py"
        script.write_text(FLOOR)
        cold: list[Child] = []
        warm: list[Child] = []
        floor: list[Child] = []
        step_s: list[float] = []
        jobs_file = root / "jobs.json"
        doc: dict[str, Any] = {}
        for i in range(args.repeat):
            cache = root / f"cache{i}"
            child, doc = run_backtest(root / f"cold{i}", cache, args.workers)
            cold.append(child)
            # the first step of each worker also pays its imports
            step_s.append(statistics.median(s["fit_seconds"] for s in doc["steps"]))
            warm.append(run_backtest(root / f"warm{i}", cache, args.workers)[0])
            if not jobs_file.exists():
                jobs_file.write_text(json.dumps(floor_jobs(doc, root)))
            floor.append(
                run_child(
                    [
                        sys.executable,
                        str(script),
                        str(jobs_file),
                        str(root / "features.npz"),
                        str(args.workers),
                    ],
                    cwd=root,
                    env=clean_env(),
                )
            )
            print(
                f"run {i + 1}: backtest {cold[-1].wall_s:.1f} s, floor {floor[-1].wall_s:.1f} s, "
                f"cached {warm[-1].wall_s:.1f} s",
                flush=True,
            )

    def med(children: list[Child], field: str) -> float:
        return statistics.median(getattr(c, field) for c in children)

    base = med(floor, "wall_s")
    steps = len(doc["steps"])
    print(
        f"\n{steps} weekly steps on the sample, --workers {args.workers}, median of "
        f"{args.repeat} interleaved runs:\n"
    )
    print("| process | wall s | CPU s | peak MB | vs floor |")
    print("|---|---|---|---|---|")
    for label, children in (
        ("floor: the steps' XGBoost fits alone (bare workers)", floor),
        ("`mptrain backtest`, empty cache", cold),
        ("`mptrain backtest`, every step cached", warm),
    ):
        wall = med(children, "wall_s")
        print(
            f"| {label} | {wall:.1f} | {med(children, 'cpu_s'):.1f} | "
            f"{med(children, 'peak_mb'):.0f} | {wall / base:.2f}x |"
        )
    print(f"\nmedian step in a worker: {statistics.median(step_s):.2f} s")
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
