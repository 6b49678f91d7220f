"""The post-promotion command: its environment, and that its failure never undoes anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketpredictor_train.api import rollback
from marketpredictor_train.config import load_settings
from marketpredictor_train.errors import HookError
from marketpredictor_train.store import run_post_promote_hook
from marketpredictor_train.store.hooks import PostPromoteHookFailed


def _settings(models_dir: Path, command: str | None, **extra):
    return load_settings(models_dir=models_dir, post_promote_command=command, **extra)


def test_hook_receives_version_action_and_model_path(store, save_models, tmp_path):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    record = store.promote(b.version, reason="r")
    seen = tmp_path / "seen.txt"
    command = (
        'printf "%s|%s|%s|%s\\n" "$MPTRAIN_VERSION" "$MPTRAIN_ACTION" '
        f'"$MPTRAIN_MODEL_PATH" "$MPTRAIN_PREVIOUS_VERSION" > {seen}'
    )
    outcome = run_post_promote_hook(_settings(store.models_dir, command), record)
    assert outcome.ran and outcome.ok and outcome.returncode == 0
    version, action, model_path, previous = seen.read_text().strip().split("|")
    assert (version, action, previous) == (b.version, "promote", a.version)
    assert Path(model_path) == store.prod_path.resolve()
    assert Path(model_path).is_absolute()


def test_no_command_configured_means_nothing_runs(store, save_models):
    (a,) = save_models(1)
    outcome = run_post_promote_hook(
        _settings(store.models_dir, None), store.promote(a.version, reason="r")
    )
    assert (outcome.ran, outcome.ok, outcome.message) == (False, True, "")


def test_failing_command_is_reported_with_its_output(store, save_models):
    (a,) = save_models(1)
    record = store.promote(a.version, reason="r")
    outcome = run_post_promote_hook(
        _settings(store.models_dir, "echo restarting; echo 'service not found' >&2; exit 3"),
        record,
    )
    assert not outcome.ok and outcome.returncode == 3 and not outcome.timed_out
    assert "restarting" in outcome.output and "service not found" in outcome.output
    assert "exit code 3" in outcome.message and a.version in outcome.message
    with pytest.raises(HookError):
        outcome.raise_for_failure()


def test_hanging_command_is_stopped_at_the_timeout(store, save_models):
    (a,) = save_models(1)
    record = store.promote(a.version, reason="r")
    settings = _settings(store.models_dir, "sleep 30 & sleep 30", post_promote_timeout_s=0.3)
    outcome = run_post_promote_hook(settings, record)
    assert outcome.timed_out and not outcome.ok and outcome.duration_s < 10
    assert "timed out after 0.3s" in outcome.message


def test_rollback_hook_failure_raises_but_the_rollback_stands(store, save_models):
    a, b = save_models(2)
    store.promote(a.version, reason="r")
    store.promote(b.version, reason="r")
    with pytest.raises(PostPromoteHookFailed) as err:
        rollback(_settings(store.models_dir, "exit 7"))
    assert err.value.exit_code == 1
    assert err.value.result.version == a.version
    assert store.production().version == a.version
    assert store.history()[-1].to_version == a.version
