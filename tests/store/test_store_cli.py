"""`mptrain rollback` and `mptrain models-list` through the real CLI and its error boundary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from store_helpers import run_python


@pytest.fixture
def three_promoted(store, save_models):
    """Versions a, b, c; a then b promoted (b is production)."""
    a, b, c = save_models(3)
    store.promote(a.version, reason="passed the gate")
    store.promote(b.version, reason="operator override", forced=True)
    return a, b, c


def test_rollback_to_a_version(cli, store, three_promoted):
    a, b, c = three_promoted
    result = cli("rollback", "--version", c.version, "--reason", "b misbehaves")
    assert result.exit_code == 0, result.output
    assert f"Production is now {c.version}" in result.output
    assert store.production().version == c.version
    last = store.history()[-1]
    assert (last.action, last.from_version, last.to_version, last.reason) == (
        "rollback",
        b.version,
        c.version,
        "b misbehaves",
    )


def test_rollback_without_version_returns_to_the_previous_production(cli, store, three_promoted):
    a, b, _ = three_promoted
    result = cli("rollback", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["version"], doc["previous_version"], doc["action"]) == (
        a.version,
        b.version,
        "rollback",
    )
    assert doc["model"]["is_production"] and doc["hook"] is None
    assert store.production().version == a.version


@pytest.mark.parametrize("version", ["../x", "nope", "20250120", "20000101_000000"])
def test_unknown_or_malformed_version_exits_3_listing_the_available_ones(
    cli, store, three_promoted, version
):
    a, b, c = three_promoted
    before = store.prod_path.read_bytes()
    result = cli("rollback", "--version", version)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert f"Available versions (newest first): {c.version}, {b.version}, {a.version}" in (
        " ".join(result.output.split())
    )
    assert store.prod_path.read_bytes() == before


def test_rollback_in_an_empty_store_exits_3_and_says_to_train_first(cli):
    result = cli("rollback")
    assert result.exit_code == 3
    assert "mptrain train" in result.output


@pytest.mark.slow
def test_manual_copy_is_identified_by_models_list_and_rollback(cli, store, three_promoted):
    a, b, c = three_promoted
    shutil.copyfile(c.path, store.prod_path)  # the seed's manual rollback

    listing = json.loads(cli("models-list", "--json").stdout)
    assert listing["production"]["version"] == c.version
    assert [m["version"] for m in listing["models"] if m["is_production"]] == [c.version]
    assert listing["production_recorded"] is False

    table = cli("models-list")
    assert table.exit_code == 0 and "set outside mptrain" in table.output

    result = cli("rollback", "--json")
    doc = json.loads(result.stdout)
    assert (doc["previous_version"], doc["version"]) == (c.version, b.version)


def test_models_list_json_shape(cli, store, three_promoted, models_dir):
    a, b, c = three_promoted
    result = cli("models-list", "--json", "--models-dir", models_dir)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {
        "schema_version",
        "command",
        "status",
        "exit_code",
        "warnings",
        "error",
        "models_dir",
        "production",
        "production_error",
        "production_recorded",
        "models",
        "unreadable",
        "history",
        "pruned",
    }
    assert doc["production"]["version"] == b.version and doc["production_recorded"] is True
    assert [m["version"] for m in doc["models"]] == [c.version, b.version, a.version]
    model = doc["models"][1]
    assert set(model) >= {
        "version",
        "created_at",
        "model_type",
        "metrics",
        "is_production",
        "size_bytes",
        "path",
    }
    assert model["metrics"]["accuracy"] == 0.51 and model["model_type"] == "xgb"
    assert [
        (h["action"], h["from_version"], h["to_version"], h["forced"]) for h in doc["history"]
    ] == [
        ("promote", None, a.version, False),
        ("promote", a.version, b.version, True),
    ]
    assert set(doc["history"][0]) == {
        "timestamp",
        "action",
        "from_version",
        "to_version",
        "reason",
        "forced",
        "user",
        "host",
        "registered_model",  # the MLflow Model Registry's name and model version,
        "mlflow_model_version",  # null here: these versions were never registered
    }
    assert doc["pruned"] is None and doc["unreadable"] == []


def test_models_list_table_shows_versions_production_and_history(cli, three_promoted):
    a, b, c = three_promoted
    result = cli("models-list")
    assert result.exit_code == 0, result.output
    for version in (a.version, b.version, c.version):
        assert version in result.output  # never cut short, whatever the terminal width
    assert "prod" in result.output and "51.00%" in result.output
    assert "Promotion history" in result.output and "operator" in result.output


def test_models_list_prune_keeps_newest_and_production(cli, store, save_models):
    models = save_models(4)
    store.promote(models[0].version, reason="r")
    result = cli("models-list", "--prune", "1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pruned"]["removed"] == [models[2].version, models[1].version]
    assert [m["version"] for m in doc["models"]] == [models[3].version, models[0].version]
    assert store.production().version == models[0].version


def test_models_list_prune_rejects_negative_counts(cli):
    result = cli("models-list", "--prune", "-1")
    assert result.exit_code == 3


def test_models_list_reports_damaged_files_instead_of_failing(cli, store, three_promoted):
    a, b, c = three_promoted
    store.prod_path.write_bytes(store.prod_path.read_bytes()[:-1])
    a.path.write_bytes(b"not a model")
    result = cli("models-list")
    assert result.exit_code == 0, result.output
    assert "Production model unreadable" in result.output
    assert "not an mptrain model file" in result.output
    doc = json.loads(cli("models-list", "--json").stdout)
    assert doc["production"] is None and "truncated" in doc["production_error"]
    assert [Path(u["path"]).name for u in doc["unreadable"]] == [a.path.name]

    repaired = cli("rollback", "--version", b.version)
    assert repaired.exit_code == 0, repaired.output
    assert store.production().version == b.version


def test_tampered_version_is_refused_by_rollback(cli, store, three_promoted):
    a, b, c = three_promoted
    data = bytearray(c.path.read_bytes())
    data[-40] ^= 0x01
    c.path.write_bytes(bytes(data))
    result = cli("rollback", "--version", c.version)
    assert result.exit_code == 1
    assert "SHA-256" in result.output and c.path.name in result.output
    assert store.production().version == b.version


def test_models_list_on_an_empty_store(cli):
    result = cli("models-list")
    assert result.exit_code == 0
    assert "No models" in result.output
    assert not Path("models").exists()  # listing never creates the store


def test_post_promote_command_gets_the_version_and_its_failure_exits_1(
    cli, store, three_promoted, tmp_path, monkeypatch
):
    a, b, _ = three_promoted
    seen = tmp_path / "seen"
    monkeypatch.setenv(
        "MPTRAIN_POST_PROMOTE_COMMAND", f'echo "$MPTRAIN_VERSION $MPTRAIN_ACTION" > {seen}; exit 2'
    )
    result = cli("rollback", "--version", a.version)
    assert result.exit_code == 1
    assert seen.read_text().split() == [a.version, "rollback"]
    assert "failed with exit code 2" in result.output and "not undone" in result.output
    assert store.production().version == a.version  # the rollback stands


def test_post_promote_command_success_exits_0(cli, store, three_promoted, tmp_path):
    a, _, _ = three_promoted
    Path("mptrain.toml").write_text(f'post_promote_command = "touch {tmp_path / "done"}"\n')
    result = cli("rollback", "--version", a.version, "--json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "done").exists()
    assert json.loads(result.stdout)["hook"]["ok"] is True


def _complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    """Ask the real `mptrain` program for bash completions, as the shell would."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    out = run_python(
        "from marketpredictor_train.cli import main; main()",
        cwd=Path.cwd(),
        env_extra={
            "_MPTRAIN_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
            **(env or {}),
        },
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.slow
def test_rollback_version_completion_offers_the_store_versions(three_promoted, models_dir):
    a, b, c = three_promoted
    assert _complete("mptrain rollback --version ") == [c.version, b.version, a.version]
    assert _complete("mptrain rollback --version 2099") == []
    elsewhere = models_dir.parent / "elsewhere"
    assert _complete(f"mptrain rollback --models-dir {elsewhere} --version ") == []
    moved = shutil.move(models_dir, elsewhere)
    assert _complete("mptrain rollback --version ", {"MPTRAIN_MODELS_DIR": str(moved)}) == [
        c.version,
        b.version,
        a.version,
    ]


def test_rollback_and_models_list_have_help_text(cli):
    for command in ("rollback", "models-list"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "--models-dir" in result.output and "--json" in result.output
    assert "--prune" in cli("models-list", "--help").output
