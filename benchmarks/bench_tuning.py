"""Benchmark: hyperparameter tuning on the bundled sample data (4 tickers, 5 years).

Prints, side by side:

* where a cold start goes: importing each heavy library in a fresh interpreter;
* data and features: loading the sample and building the modelling table;
* ``optimize`` with and without pruning, same seed and trial count: trials per minute,
  fold fits started, boosting rounds actually fitted (the pruning saving must be >= 30%),
  the time inside the fits and inside the pruning callbacks (storage round trips);
* ``train --optimize --trials N`` end to end as a user runs it (a separate process), with
  the run's own step timings, the rest being interpreter start and imports.

Run: ``uv run python benchmarks/bench_tuning.py`` (``--help`` for the sizes). Exits 1 when
pruning saves less than 30% of the boosting rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

MIN_SAVING = 0.30
IMPORTS = (
    "marketpredictor_train.cli",
    "polars",
    "optuna",
    "xgboost",
    "lightgbm",
    "sklearn.ensemble",
    "mlflow",
)


def import_seconds(module: str) -> float:
    """Wall time of `import module` in a fresh interpreter, less the interpreter's start."""
    code = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code.format(m=module)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MLFLOW_CONFIGURE_LOGGING": "false"},
    )
    return float(out.stdout.strip().splitlines()[-1])


class _Meter:
    """Times the model type's tuning fits and the pruning reporter's calls, by wrapping
    them for the duration of one run."""

    def __init__(self, model_cls: type) -> None:
        from marketpredictor_train.tuning.objective import FoldReporter

        self.fit_s = 0.0
        self.callback_s = 0.0
        self._patched = [
            (model_cls, "fit_fold", "fit_s"),
            (FoldReporter, "report", "callback_s"),
            (FoldReporter, "should_prune", "callback_s"),
        ]
        self._originals: list[tuple[type, str, Any]] = []

    def __enter__(self) -> _Meter:
        for owner, name, counter in self._patched:
            original = owner.__dict__.get(name)  # None: inherited, removed again on exit
            self._originals.append((owner, name, original))
            setattr(owner, name, self._timed(original or getattr(owner, name), counter))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in self._originals:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def _timed(self, function: Any, counter: str) -> Any:
        meter = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(meter, counter, getattr(meter, counter) + time.perf_counter() - start)

        return timed


@contextmanager
def _random_sampler() -> Iterator[None]:
    """Swap TPE for a seeded random sampler, whose parameter sequence does not depend on
    earlier results: both runs then try the same trials, and only pruning differs."""
    import optuna

    tpe = optuna.samplers.TPESampler
    optuna.samplers.TPESampler = lambda seed=None, **_: optuna.samplers.RandomSampler(seed)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        optuna.samplers.TPESampler = tpe  # type: ignore[misc]


def run_optimize(
    dataset: Any, *, trials: int, pruning: bool, model_type: str, same_params: bool
) -> dict[str, Any]:
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.models.registry import get_model_type
    from marketpredictor_train.pipelines.common import fitting_threads
    from marketpredictor_train.tuning import tune

    model_cls = get_model_type(model_type)
    sampler = _random_sampler() if same_params else nullcontext()
    with tempfile.TemporaryDirectory() as tmp, _Meter(model_cls) as meter, sampler:
        settings = load_settings(
            source="sample",
            model_type=model_type,
            trials=trials,
            pruning=pruning,
            mlflow=False,
            models_dir=Path(tmp) / "models",
        )
        with fitting_threads(settings, dataset):  # the threads `mptrain optimize` fits with
            start = time.perf_counter()
            outcome = tune(settings, model_cls, dataset, device="cpu")
            wall = time.perf_counter() - start
    return {
        "pruning": pruning,
        "trials": outcome.trials_run,
        "states": outcome.trials_run_by_state,
        "wall_s": wall,
        "trials_per_min": 60.0 * outcome.trials_run / wall,
        "fits": outcome.fits,
        "boosting_rounds": outcome.boosting_rounds,
        "fit_s": meter.fit_s,
        "callback_s": meter.callback_s,
        "best_cv_log_loss": outcome.best_value,
        "best_cv_accuracy": outcome.best_cv_accuracy,
    }


def run_train_end_to_end(trials: int, model_type: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MPTRAIN_")}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "marketpredictor_train", "train", "--optimize",
             "--trials", str(trials), "--model-type", model_type, "--source", "sample",
             "--dry-run", "--quiet", "--output-json", str(out)],
            cwd=tmp, env=env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if not out.exists():
            raise SystemExit(f"train failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        doc = json.loads(out.read_text())
    timings = doc["timings"]
    return {
        "wall_s": wall,
        "start_and_imports_s": wall - doc["duration_s"],
        "timings": timings,
        "param_source": doc["param_source"],
        "exit_code": doc["exit_code"],
        "accuracy": doc["metrics"]["accuracy"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP threads per fit (default 1: on a loaded machine OpenMP's spinning "
        "threads make multi-threaded timings swing tenfold; counts are unaffected)",
    )
    parser.add_argument("--trials", type=int, default=40, help="trials per optimize run")
    parser.add_argument("--e2e-trials", type=int, default=50, help="trials of train --optimize")
    parser.add_argument("--model-type", default="xgb")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end train")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    # Before any model library loads OpenMP; the subprocesses below inherit it.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import logging

    import structlog

    # The numbers are the output; the runs' own log lines would drown them.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger().setLevel(logging.WARNING)

    report: dict[str, Any] = {}
    print("Cold imports (fresh interpreter each):")
    report["imports_s"] = {m: import_seconds(m) for m in IMPORTS}
    for module, seconds in report["imports_s"].items():
        print(f"  {module:<28} {seconds:6.2f} s")

    from marketpredictor_train.config import load_settings
    from marketpredictor_train.pipelines.common import prepare_data
    from marketpredictor_train.progress import StepTimer

    timer = StepTimer()
    _, dataset = prepare_data(load_settings(source="sample", mlflow=False), timer, None)
    report["data"] = {**timer.timings, "n_train": dataset.train.height}
    print(
        f"\nData: load {timer.timings['data']:.2f} s, features {timer.timings['features']:.2f} s "
        f"({dataset.train.height} training rows, {len(dataset.feature_columns)} features)"
    )

    savings = {}
    for same_params, title in (
        (True, "same parameter sequence for both (seeded random sampler): pruning alone"),
        (False, "TPE, as optimize runs it (the sampler adapts to pruned trials)"),
    ):
        runs = [
            run_optimize(
                dataset,
                trials=args.trials,
                pruning=p,
                model_type=args.model_type,
                same_params=same_params,
            )
            for p in (False, True)
        ]
        key = "random_sampler" if same_params else "tpe"
        report[f"optimize_{key}"] = runs
        savings[key] = _print_runs(runs, args, title)
    report["saving"] = savings
    saving = savings["random_sampler"]["boosting_rounds"]
    verdict = "ok" if saving >= MIN_SAVING else "BELOW TARGET"
    print(
        f"\nPruning alone saved {saving:.0%} of the boosting rounds "
        f"(target >= {MIN_SAVING:.0%}: {verdict})"
    )

    if not args.skip_e2e:
        e2e = run_train_end_to_end(args.e2e_trials, args.model_type)
        report["train_end_to_end"] = e2e
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in e2e["timings"].items())
        print(
            f"\ntrain --optimize --trials {args.e2e_trials} --source sample --dry-run: "
            f"{e2e['wall_s']:.1f} s end to end\n  interpreter start and imports "
            f"{e2e['start_and_imports_s']:.1f} s; {steps}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0 if saving >= MIN_SAVING else 1


def _print_runs(runs: list[dict[str, Any]], args: argparse.Namespace, title: str) -> dict:
    off, on = runs
    rows = [
        ("trials", "trials", "{:d}"),
        ("wall time (s)", "wall_s", "{:.1f}"),
        ("trials / minute", "trials_per_min", "{:.1f}"),
        ("fold fits started", "fits", "{:d}"),
        ("boosting rounds fitted", "boosting_rounds", "{:d}"),
        ("time in fits (s)", "fit_s", "{:.1f}"),
        ("  of which pruning callbacks", "callback_s", "{:.1f}"),
        ("best CV log loss", "best_cv_log_loss", "{:.4f}"),
        ("best CV accuracy", "best_cv_accuracy", "{:.2%}"),
    ]
    print(f"\noptimize --model-type {args.model_type} --trials {args.trials}, {title}:")
    print(f"  {'':<30}{'--no-pruning':>14}{'pruning':>14}")
    for label, key, fmt in rows:
        print(f"  {label:<30}{fmt.format(off[key]):>14}{fmt.format(on[key]):>14}")
    print(f"  {'trial states':<30}{_states(off):>14}{_states(on):>14}")
    saving = {
        "boosting_rounds": 1.0 - on["boosting_rounds"] / off["boosting_rounds"],
        "fold_fits": 1.0 - on["fits"] / off["fits"],
        "wall_time": 1.0 - on["wall_s"] / off["wall_s"],
    }
    print(
        f"  saved: {saving['boosting_rounds']:.0%} of the boosting rounds, "
        f"{saving['fold_fits']:.0%} of the fold fits, {saving['wall_time']:.0%} of the time"
    )
    return saving


def _states(run: dict[str, Any]) -> str:
    return "/".join(f"{n}{s[0]}" for s, n in sorted(run["states"].items()))


if __name__ == "__main__":
    raise SystemExit(main())
