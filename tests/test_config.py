"""Settings precedence, one test per edge: flags > MPTRAIN_* env > config file > defaults;
and bad configuration is a ConfigError (exit 3) naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketpredictor_train.config import check_environment, load_settings
from marketpredictor_train.errors import ConfigError


def test_defaults_are_the_seeds():
    s = load_settings()
    assert (s.period, s.model_type, s.trials, s.horizon) == ("5y", "xgb", 20, 1)
    assert s.thresholds == {"accuracy": 0.60, "precision": 0.55, "recall": 0.50, "f1": 0.52}
    assert s.models_dir == Path("models") and s.logs_dir == Path("logs")


def test_config_file_beats_defaults():
    Path("mptrain.toml").write_text('period = "10y"\nmin_accuracy = 0.55\n')
    s = load_settings()
    assert s.period == "10y" and s.min_accuracy == 0.55


def test_pyproject_tool_table_is_read_when_there_is_no_mptrain_toml():
    Path("pyproject.toml").write_text('[project]\nname = "x"\n[tool.mptrain]\ntrials = 7\n')
    assert load_settings().trials == 7


def test_mptrain_toml_wins_over_pyproject():
    Path("pyproject.toml").write_text("[tool.mptrain]\ntrials = 7\n")
    Path("mptrain.toml").write_text("trials = 9\n")
    assert load_settings().trials == 9


def test_env_beats_config_file(monkeypatch):
    Path("mptrain.toml").write_text('period = "10y"\n')
    monkeypatch.setenv("MPTRAIN_PERIOD", "2y")
    assert load_settings().period == "2y"


def test_flag_beats_env(monkeypatch):
    monkeypatch.setenv("MPTRAIN_PERIOD", "2y")
    assert load_settings(period="1y").period == "1y"


def test_unset_flag_does_not_hide_configured_value(monkeypatch):
    monkeypatch.setenv("MPTRAIN_MODELS_DIR", "/srv/models")
    assert load_settings(models_dir=None).models_dir == Path("/srv/models")


def test_explicit_config_file_via_env(tmp_path, monkeypatch):
    cfg = tmp_path / "team.toml"
    cfg.write_text('tickers = ["nvda", "amd"]\n')
    monkeypatch.setenv("MPTRAIN_CONFIG", str(cfg))
    assert load_settings().tickers == ["NVDA", "AMD"]


def test_tickers_from_env_are_comma_separated(monkeypatch):
    monkeypatch.setenv("MPTRAIN_TICKERS", "aapl, msft")
    assert load_settings().tickers == ["AAPL", "MSFT"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("period = 'forever'\n", "period"),
        ("min_accuracy = 2\n", "min_accuracy"),
        ("no_such_setting = 1\n", "no_such_setting"),
        ("this is not toml\n", "mptrain.toml"),
    ],
)
def test_bad_config_file_is_a_config_error_naming_the_fault(content, needle):
    Path("mptrain.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert needle in str(info.value)
    assert info.value.exit_code == 3


def test_bad_config_file_exits_3_through_the_cli(cli):
    Path("mptrain.toml").write_text("min_accuracy = 'high'\n")
    result = cli("train", "--source", "sample")
    assert result.exit_code == 3
    assert "min_accuracy" in result.output


def test_a_misspelt_setting_in_the_environment_exits_3_like_in_the_file(cli, monkeypatch):
    monkeypatch.setenv("MPTRAIN_MIN_ACURACY", "0.5")
    result = cli("train", "--source", "sample", "--dry-run")
    assert result.exit_code == 3, result.output
    assert "MPTRAIN_MIN_ACURACY (did you mean MPTRAIN_MIN_ACCURACY?)" in result.output
    assert not Path("models").exists() and not Path("logs").exists()


def test_a_misspelt_setting_in_the_file_suggests_the_setting(cli):
    Path("mptrain.toml").write_text("min_acuracy = 0.5\n")
    result = cli("train", "--source", "sample", "--dry-run")
    assert result.exit_code == 3, result.output
    assert "min_acuracy: unknown setting (did you mean min_accuracy?)" in result.output


@pytest.mark.parametrize(
    "name",
    [
        "MPTRAIN_CONFIG",
        "MPTRAIN_SIGNING_KEY",
        "MPTRAIN_VERIFY_KEY",
        "MPTRAIN_THREADS",
        "MPTRAIN_VERSION",  # set for the post-promotion command, which may call mptrain
        "MPTRAIN_TEST_POSTGRES_URL",
        "mptrain_min_accuracy",  # a setting, in any case
    ],
)
def test_mptrain_variables_that_are_not_settings_but_known_are_allowed(name):
    check_environment({name: "x"})


def test_every_unknown_variable_is_named():
    with pytest.raises(ConfigError) as info:
        check_environment({"MPTRAIN_NOPE": "1", "MPTRAIN_MODELSDIR": "m", "PATH": "/bin"})
    assert "MPTRAIN_MODELSDIR (did you mean MPTRAIN_MODELS_DIR?)" in str(info.value)
    assert "MPTRAIN_NOPE" in str(info.value) and info.value.exit_code == 3
