"""Start-up benchmark: `mptrain --help` beside `python -c "import typer"`, the floor any
Typer CLI pays. Target: mptrain within 1.5x of that floor.

Run: uv run python benchmarks/bench_startup.py [--runs 20]
Each command runs in a fresh process; we report the minimum (the least disturbed run,
the fairest figure on a busy machine) and the median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.5


def _mptrain_command() -> list[str]:
    # Prefer the console script that users run; fall back to the module when not installed.
    script = Path(sys.executable).with_name("mptrain")
    if script.exists():
        return [str(script), "--help"]
    found = shutil.which("mptrain")
    return [found, "--help"] if found else [sys.executable, "-m", "marketpredictor_train", "--help"]


def _time_once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command (default 20)")
    args = parser.parse_args()

    commands = {
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "mptrain --help": _mptrain_command(),
    }
    for command in commands.values():
        _time_once(command)  # warm the bytecode and file caches
    results: dict[str, list[float]] = {label: [] for label in commands}
    # Interleave the two commands so a burst of load on the machine hits both alike.
    for _ in range(args.runs):
        for label, command in commands.items():
            results[label].append(_time_once(command))

    print(f"{'command':<28} {'min ms':>8} {'median ms':>10}   ({args.runs} runs each)")
    for label, times in results.items():
        print(f"{label:<28} {min(times) * 1000:8.1f} {statistics.median(times) * 1000:10.1f}")
    floor = min(results["python -c 'import typer'"])
    ours = min(results["mptrain --help"])
    ratio = ours / floor
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio (min): {ratio:.2f}x - {verdict} the {TARGET_RATIO}x target")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
