"""One JSON document shape for every command: the same head (schema_version, command,
status, exit_code, warnings, error) on success and on failure, whether it goes to
--output-json or (--json) to stdout."""

from __future__ import annotations

import json

import pytest

HEAD = {"schema_version", "command", "status", "exit_code", "warnings", "error"}


def _head_ok(doc: dict, command: str, exit_code: int) -> None:
    assert set(doc) >= HEAD, sorted(HEAD - set(doc))
    assert doc["schema_version"] == 1 and doc["command"] == command
    assert doc["exit_code"] == exit_code
    assert isinstance(doc["warnings"], list)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["train", "--source", "missing.csv"], "train"),
        (["validate", "--models-dir", "empty"], "validate"),
        (["optimize", "--source", "missing.csv"], "optimize"),
    ],
)
def test_output_json_of_a_failed_run_has_the_common_head(cli, tmp_path, argv, command):
    out = tmp_path / "result.json"
    result = cli(*argv, "--output-json", out)
    assert result.exit_code in (1, 3), result.output
    doc = json.loads(out.read_text())
    _head_ok(doc, command, result.exit_code)
    assert doc["status"] == "failed"
    assert doc["error"]["type"] and doc["error"]["message"]


def test_json_on_stdout_has_the_head_on_success(cli, tmp_path):
    listing = cli("models-list", "--json", "--models-dir", tmp_path / "models")
    assert listing.exit_code == 0, listing.output
    doc = json.loads(listing.stdout)
    _head_ok(doc, "models-list", 0)
    assert doc["status"] == "listed" and doc["error"] is None and doc["models"] == []

    info = cli("data", "info", "--json")
    assert info.exit_code == 0, info.output
    _head_ok(json.loads(info.stdout), "data info", 0)

    check = cli("data", "check", "--source", "sample", "--json")
    assert check.exit_code == 0, check.output
    doc = json.loads(check.stdout)
    _head_ok(doc, "data check", 0)
    assert doc["status"] == "passed" and doc["source"] == "sample" and doc["rows"] > 0


def test_json_on_stdout_has_the_head_on_failure(cli, tmp_path):
    """A failing --json command still prints one document on stdout (the error message
    goes to stderr), so a script that parses stdout never reads half a result."""
    bad = tmp_path / "bad.csv"
    bad.write_text("date,ticker,open,high,low,close,volume\n2024-01-02,AAA,1,2,1,-1,10\n")
    check = cli("data", "check", "--source", bad, "--json")
    assert check.exit_code == 1
    doc = json.loads(check.stdout)
    _head_ok(doc, "data check", 1)
    assert doc["status"] == "failed" and doc["error"]["type"] == "DataError"

    rollback = cli("rollback", "--json", "--models-dir", tmp_path / "models")
    assert rollback.exit_code == 3  # nothing to roll back to
    doc = json.loads(rollback.stdout)
    _head_ok(doc, "rollback", 3)
    assert doc["status"] == "failed" and doc["error"]["type"] == "ConfigError"

    bad_version = cli("rollback", "--json", "--version", "../x", "--models-dir", tmp_path)
    assert bad_version.exit_code == 3
    _head_ok(json.loads(bad_version.stdout), "rollback", 3)
