"""Benchmark: what a whole `mptrain train` costs beside the model fit it exists for.

Prints, side by side, each measured in one run of this script:

* train vs bare fit: a whole ``mptrain train --source FILE --period 10y --force`` process
  (MLflow on, its default local store in a fresh folder) on generated OHLCV of
  ``--tickers`` x ``--years``, beside a bare process that only imports XGBoost and fits a
  float64 matrix of the train's shape (training rows x model features) with the seed's
  parameters; wall time and peak RSS of each child process (``os.wait4``), and the
  ratios. The same train with ``--calibration none`` is shown too: the default isotonic
  calibration fits the model a second time, on the training part without its last fold;
* tuning: trials per minute of the same study settings (seeded TPE, pruning on, the same
  trials) with each fold's quantised matrices rebuilt in every trial and the folds fitted
  one at a time (as before), built once per study, and built once with the folds of a
  trial fitted side by side (now), on the same data; ``--tune-model lgb``: the same with
  LightGBM's Datasets (rebuilt in every trial, or built once per study; its folds are
  fitted one at a time either way);
* a busy machine: ``train --source sample`` alone and beside two CPU-bound processes,
  with the automatic thread choice and passive OpenMP wait (now), and with every core
  and OpenMP's active wait (as before);
* scale: time and peak memory of the train process at ``--scale`` tickers x 10 years,
  and (unless ``--skip-biggest``) ``--biggest`` tickers x 10 years, about 10M rows.
  (``--period`` stops at 10y, so 10M rows are 4,000 tickers x 10 years.)

Run: ``uv run python benchmarks/bench_train.py`` (``--help`` for the sizes and parts). The
numbers move with machine load; the ratios of runs made side by side are what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAYS_PER_YEAR = 252

BARE_FIT = """
import sys, time
import numpy as np
import xgboost
rows, cols = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.standard_normal((rows, cols))
y = (X[:, 0] + rng.standard_normal(rows) > 0).astype(np.int64)
start = time.perf_counter()
# with a third argument, first a fit on that many leading rows (train's calibration fit)
for n in [int(a) for a in sys.argv[3:]] + [rows]:
    xgboost.XGBClassifier(
        n_estimators=100, max_depth=6, learning_rate=0.1, eval_metric="logloss",
        objective="binary:logistic", tree_method="hist", random_state=42,
    ).fit(X[:n], y[:n], verbose=False)
print(time.perf_counter() - start)
"""

BUSY_LOOP = "while True:\n    pass\n"


@dataclass(frozen=True)
class Child:
    """One child process: wall seconds, peak RSS in MB, exit code, its stdout, and CPU
    seconds (user + system of it and the children it waited for, such as workers)."""

    wall_s: float
    peak_mb: float
    code: int
    stdout: str
    cpu_s: float = 0.0


def run_child(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Child:
    """Run ``cmd`` to the end; wall time and peak RSS of that very process (wait4: the
    largest of it and the children it waited for)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        cpu = usage.ru_utime + usage.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode not in (0, 2):
            sys.stderr.write(err.read().decode(errors="replace")[-3000:])
    return Child(wall, usage.ru_maxrss / 1024.0, proc.returncode, text, cpu)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPTRAIN_", "MLFLOW_"))}
    env.pop("OMP_WAIT_POLICY", None)
    env.update(extra)
    return env


def write_universe(folder: Path, tickers: int, years: int) -> Path:
    from marketpredictor_train.testing.synthetic import synthetic_ohlcv

    path = folder / f"ohlcv_{tickers}x{years}y.parquet"
    if not path.exists():
        synthetic_ohlcv(tickers, DAYS_PER_YEAR * years, seed=0).write_parquet(path)
    return path


def run_train(
    source: str, work: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[Child, dict[str, Any]]:
    """``mptrain train`` in a fresh folder (its own models/, logs/ and MLflow store)."""
    work.mkdir(parents=True, exist_ok=True)
    result = work / "result.json"
    cmd = [
        sys.executable,
        "-m",
        "marketpredictor_train",
        "train",
        "--source",
        source,
        "--quiet",
        "--output-json",
        str(result),
        *extra,
    ]
    child = run_child(cmd, cwd=work, env=env or clean_env())
    doc = json.loads(result.read_text()) if result.exists() else {}
    if child.code not in (0, 2):
        raise SystemExit(f"train failed (exit {child.code}): {doc.get('error')}")
    return child, doc


def bare_fit(
    rows: int, cols: int, work: Path, first_rows: int | None = None
) -> tuple[Child, float]:
    # The same OpenMP wait policy as mptrain's, so the bare fit is not the one that
    # spins on a shared machine.
    env = clean_env(OMP_WAIT_POLICY="PASSIVE")
    extra = [] if first_rows is None else [str(first_rows)]
    cmd = [sys.executable, "-c", BARE_FIT, str(rows), str(cols), *extra]
    child = run_child(cmd, cwd=work, env=env)
    return child, float(child.stdout.strip().splitlines()[-1])


def calibration_rows(work: Path, doc: dict[str, Any]) -> int:
    """Rows of the calibration fit of the train run in ``work`` (from its model file)."""
    from marketpredictor_train.store.modelfile import read_model_file

    manifest = read_model_file(work / doc["model_path"]).manifest
    return int(manifest["calibration"]["fitted_on"]["train_rows"])


def stages(doc: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in doc.get("timings", {}).items())


# --- the parts -----------------------------------------------------------------------


def _median_child(children: list[Child]) -> Child:
    """The run of median wall time (its own peak memory beside it)."""
    return sorted(children, key=lambda c: c.wall_s)[len(children) // 2]


def part_train_vs_bare(root: Path, tickers: int, years: int, repeat: int = 1) -> list[str]:
    """Each process ``repeat`` times, interleaved (bare, train, train without calibration,
    bare, ...), so a change in the machine's load reaches all three alike; the table shows
    each one's median run."""
    source = write_universe(root, tickers, years)
    period = ("--period", f"{min(years, 10)}y")
    bares: list[tuple[Child, float]] = []
    bare_twos: list[tuple[Child, float]] = []
    trains: list[tuple[Child, dict[str, Any]]] = []
    nocals: list[tuple[Child, dict[str, Any]]] = []
    rows = cols = 0
    for i in range(repeat):
        # a new folder each time: a new MLflow store, as a first run or the weekly job has
        trains.append(run_train(str(source), root / f"train_{i}", *period, "--force"))
        rows, cols = int(trains[-1][1]["n_train"]), int(trains[-1][1]["n_features"])
        bares.append(bare_fit(rows, cols, root))
        first = calibration_rows(root / f"train_{i}", trains[-1][1])
        bare_twos.append(bare_fit(rows, cols, root, first_rows=first))
        nocals.append(
            run_train(
                str(source), root / f"train_nocal_{i}", *period, "--force", "--calibration", "none"
            )
        )
    bare = _median_child([b for b, _ in bares])
    bare_fit_s = next(f for b, f in bares if b is bare)
    bare_two = _median_child([b for b, _ in bare_twos])
    bare_two_s = next(f for b, f in bare_twos if b is bare_two)
    train = _median_child([c for c, _ in trains])
    doc = next(d for c, d in trains if c is train)
    nocal = _median_child([c for c, _ in nocals])
    nocal_doc = next(d for c, d in nocals if c is nocal)
    runs = f", median of {repeat} interleaved runs each" if repeat > 1 else ""
    lines = [
        f"### train vs bare fit: {tickers} tickers x {years} years, {rows:,} training rows "
        f"x {cols} features{runs}",
        "",
        "| process | wall s | peak MB | wall / bare | peak / bare | stages (s) |",
        "|---|---|---|---|---|---|",
        f"| bare: import xgboost, fit float64 {rows:,} x {cols} (every core, passive "
        f"OpenMP wait) | {bare.wall_s:.1f} | "
        f"{bare.peak_mb:.0f} | 1.00 | 1.00 | fit {bare_fit_s:.1f} |",
        f"| bare, two fits as the default train makes them: first on the {first:,} rows of "
        f"its calibration fit, then on all | {bare_two.wall_s:.1f} | {bare_two.peak_mb:.0f} | "
        f"{bare_two.wall_s / bare.wall_s:.2f} | {bare_two.peak_mb / bare.peak_mb:.2f} | "
        f"fits {bare_two_s:.1f} |",
    ]
    for name, child, d in (
        ("`mptrain train --force` (default: isotonic calibration, 2 fits)", train, doc),
        ("`mptrain train --force --calibration none` (1 fit)", nocal, nocal_doc),
    ):
        lines.append(
            f"| {name} | {child.wall_s:.1f} | {child.peak_mb:.0f} | "
            f"{child.wall_s / bare.wall_s:.2f} | {child.peak_mb / bare.peak_mb:.2f} | "
            f"{stages(d)} |"
        )
    lines.append(
        f"\nThe default train against the bare two fits: {train.wall_s / bare_two.wall_s:.2f}x "
        f"wall, {train.peak_mb / bare_two.peak_mb:.2f}x peak."
    )
    if repeat > 1:
        walls = ", ".join(
            f"{label} {' / '.join(f'{c.wall_s:.1f}' for c in group)}"
            for label, group in (
                ("bare", [b for b, _ in bares]),
                ("bare two fits", [b for b, _ in bare_twos]),
                ("train", [c for c, _ in trains]),
                ("--calibration none", [c for c, _ in nocals]),
            )
        )
        lines += ["", f"Every run's wall s: {walls}."]
    lines.append("")
    return lines


def part_tuning(root: Path, tickers: int, years: int, trials: int, model: str = "xgb") -> list[str]:
    import logging

    import structlog

    from marketpredictor_train.config import load_settings
    from marketpredictor_train.pipelines.common import fitting_threads, prepare_data
    from marketpredictor_train.progress import StepTimer
    from marketpredictor_train.tuning import objective as objective_module
    from marketpredictor_train.tuning import tune

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    source = write_universe(root, tickers, years)
    base = {
        "source": str(source),
        "period": f"{min(years, 10)}y",
        "trials": trials,
        "pruning": True,
        "mlflow": False,
    }
    _, dataset = prepare_data(load_settings(**base), StepTimer(), None)
    from marketpredictor_train.models.registry import get_model_type

    model_cls = get_model_type(model)
    reuse = objective_module.Objective

    class RebuildEveryTrial(reuse):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, reuse_folds=False)  # one fold at a time, too

    class OneFoldAtATime(reuse):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, concurrent=False)

    variants: tuple[tuple[str, type], ...] = (
        ("rebuilt in every trial, one fold at a time (before)", RebuildEveryTrial),
        ("built once per study, one fold at a time", OneFoldAtATime),
        ("built once per study, folds side by side (now)", reuse),
    )
    if not model_cls.concurrent_fits:  # its folds are fitted one at a time either way
        variants = (variants[0], ("built once per study (now)", reuse))
    runs = {}
    for label, cls in variants:
        objective_module.Objective = cls
        try:
            settings = load_settings(**base, models_dir=root / f"tune_{len(runs)}")
            with fitting_threads(settings, dataset):  # as `mptrain optimize` does
                start = time.perf_counter()
                outcome = tune(settings, model_cls, dataset, device="cpu")
                wall = time.perf_counter() - start
        finally:
            objective_module.Objective = reuse
        runs[label] = (outcome, wall)
    before = next(iter(runs.values()))
    structures = "Datasets" if model == "lgb" else "matrices"
    lines = [
        f"### tuning: {model}, {trials} trials, TPE seed 42, pruning on, "
        f"{dataset.train.height:,} training rows, {len(before[0].folds)} folds",
        "",
        f"| fold {structures}, fits | trials/min | wall s | fits | boosting rounds "
        "| best CV log loss | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, (outcome, wall) in runs.items():
        lines.append(
            f"| {label} | {60 * outcome.trials_run / wall:.2f} | {wall:.1f} | {outcome.fits} | "
            f"{outcome.boosting_rounds} | {outcome.best_value:.6f} | {before[1] / wall:.2f}x |"
        )
    lines.append("")
    return lines


def part_tuning_release(
    root: Path, tickers: int, years: int, trials: int, before_tree: Path
) -> list[str]:
    """`mptrain optimize` of the code before the speed work (a checkout of it at
    ``before_tree``, run on this environment's libraries) beside today's, same data and
    trial settings, each a child process."""
    source = write_universe(root, tickers, years)
    rows = []
    for label, pythonpath in (("before the speed work", str(before_tree)), ("now", None)):
        work = root / f"optimize_{len(rows)}"
        work.mkdir(parents=True, exist_ok=True)
        env = clean_env(MPTRAIN_MLFLOW="false")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        result = work / "result.json"
        cmd = [sys.executable, "-m", "marketpredictor_train", "optimize", "--source", str(source)]
        cmd += ["--period", f"{min(years, 10)}y", "--trials", str(trials), "--quiet"]
        child = run_child([*cmd, "--output-json", str(result)], cwd=work, env=env)
        doc = json.loads(result.read_text())
        if child.code != 0:
            raise SystemExit(f"optimize failed (exit {child.code}): {doc.get('error')}")
        rows.append((label, child, doc))
    first = rows[0][2]
    lines = [
        f"### tuning, release before the speed work vs now: `mptrain optimize --trials {trials}`"
        f" (xgb, TPE seed 42, pruning on), {first['n_train']:,} training rows, "
        f"{len(first['folds'])} folds",
        "",
        "| code | trials/min (optimize stage) | optimize s | process s | peak MB | fits "
        "| boosting rounds | best CV log loss | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = rows[0][2]["timings"]["optimize"]
    for label, child, doc in rows:
        seconds = doc["timings"]["optimize"]
        lines.append(
            f"| {label} | {60 * doc['trials_run'] / seconds:.2f} | {seconds:.1f} | "
            f"{child.wall_s:.1f} | {child.peak_mb:.0f} | {doc['fits']} | "
            f"{doc['boosting_rounds']} | {doc['best_value']:.6f} | {base / seconds:.2f}x |"
        )
    lines.append("")
    return lines


def part_busy(root: Path) -> list[str]:
    def timed(label: str, env: dict[str, str], extra: tuple[str, ...], busy: bool) -> Child:
        hogs = []
        if busy:
            hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(2)]
            time.sleep(0.5)
        try:
            child, _ = run_train("sample", root / f"busy_{label}_{busy}", *extra, env=env)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
        return child

    cores = os.cpu_count() or 1
    variants = {
        "now: auto threads, OMP_WAIT_POLICY=PASSIVE": (clean_env(), ()),
        f"before: {cores} threads (every core), OpenMP active wait": (
            clean_env(OMP_WAIT_POLICY="ACTIVE"),
            ("--threads", str(cores)),
        ),
    }
    lines = [
        "### busy machine: `train --source sample`, alone vs beside 2 CPU-bound processes",
        "",
        "| threads | quiet s | busy s | busy / quiet |",
        "|---|---|---|---|",
    ]
    for label, (env, extra) in variants.items():
        quiet = timed(label[:3], env, extra, busy=False)
        busy = timed(label[:3], env, extra, busy=True)
        lines.append(
            f"| {label} | {quiet.wall_s:.1f} | {busy.wall_s:.1f} | "
            f"{busy.wall_s / quiet.wall_s:.2f} |"
        )
    lines.append("")
    return lines


def part_scale(root: Path, sizes: list[int], biggest: int | None) -> list[str]:
    lines = [
        "### scale: `mptrain train --period 10y --force`, 10 years of daily bars",
        "",
        "| tickers | OHLCV rows | training rows | wall s | peak MB | s per 100k rows | "
        "MB per 100k rows | stages (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tickers in [*sizes, *([biggest] if biggest else [])]:
        source = write_universe(root, tickers, 10)
        child, doc = run_train(str(source), root / f"scale_{tickers}", "--period", "10y", "--force")
        rows = tickers * DAYS_PER_YEAR * 10
        lines.append(
            f"| {tickers:,} | {rows:,} | {int(doc['n_train']):,} | {child.wall_s:.1f} | "
            f"{child.peak_mb:.0f} | {child.wall_s / rows * 1e5:.2f} | "
            f"{child.peak_mb / rows * 1e5:.1f} | {stages(doc)} |"
        )
        source.unlink()
    lines.append("")
    return lines


def _show(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--trials", type=int, default=6, help="tuning trials per side")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each process in the train part"
    )
    parser.add_argument("--tune-tickers", type=int, default=500)
    parser.add_argument(
        "--tune-model",
        default="xgb",
        help="model type of the tuning part (xgb: quantised matrices; lgb: Datasets)",
    )
    parser.add_argument("--scale", type=int, nargs="*", default=[250, 500, 1000])
    parser.add_argument("--biggest", type=int, default=4000, help="tickers of the ~10M-row run")
    parser.add_argument("--skip-biggest", action="store_true", help="leave out the ~10M-row run")
    parser.add_argument(
        "--parts",
        default="train,tuning,busy,scale",
        help="comma-separated: train, tuning, busy, scale, release [default: all but release]",
    )
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="a checkout of the code before the speed work (`git worktree add DIR "
        "6edb36a^`), for the release part",
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the tuning runs in this process
    parts = set(args.parts.split(","))
    load = os.getloadavg()
    print(
        f"# bench_train: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        if "train" in parts:
            _show(part_train_vs_bare(root, args.tickers, args.years, args.repeat))
        if "tuning" in parts:
            _show(part_tuning(root, args.tune_tickers, args.years, args.trials, args.tune_model))
        if "release" in parts:
            if args.before_tree is None:
                raise SystemExit("the release part needs --before-tree DIR")
            _show(
                part_tuning_release(
                    root, args.tune_tickers, args.years, args.trials, args.before_tree
                )
            )
        if "busy" in parts:
            _show(part_busy(root))
        if "scale" in parts:
            _show(part_scale(root, args.scale, None if args.skip_biggest else args.biggest))
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
