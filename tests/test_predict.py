"""Using the model: `load_model` and `LoadedModel.predict` (the library) and `mptrain
predict` (the CLI), on real models trained on the bundled sample data. The probabilities
must be the library's, the CLI's and the model's own backtest's, to the last bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from marketpredictor_train import LoadedModel, load_model
from marketpredictor_train.errors import ConfigError, DataError, ModelFileError, StoreError

TICKERS = ("AAPL", "MSFT")
DATA = ("--source", "sample", "--tickers", ",".join(TICKERS), "--period", "3y")
DATA_SETTINGS = {"source": "sample", "tickers": list(TICKERS), "period": "3y"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with two forced promotions: v1 (horizon 1), then v2 (horizon 2, production)."""
    from marketpredictor_train import api
    from marketpredictor_train.config import load_settings

    tmp = tmp_path_factory.mktemp("predict_store")
    common = {
        **DATA_SETTINGS,
        "mlflow": False,
        "force": True,
        "models_dir": tmp / "models",
        "logs_dir": tmp / "logs",
        "quiet": True,
    }
    first = api.train(load_settings(**common))
    second = api.train(load_settings(horizon=2, **common))
    assert first.promoted and second.promoted
    return {"models_dir": tmp / "models", "v1": first, "v2": second}


@pytest.fixture(scope="module")
def sample_frame() -> pl.DataFrame:
    """The OHLCV frame `--source sample --tickers AAPL,MSFT --period 3y` loads."""
    from marketpredictor_train.config import load_settings
    from marketpredictor_train.data import load_ohlcv

    return load_ohlcv(load_settings(**DATA_SETTINGS)).frame


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _predict(cli, trained, *args, out: Path) -> dict:
    result = cli(
        "predict", *DATA, "--models-dir", trained["models_dir"], *args, "--output-json", out
    )
    assert result.exit_code == 0, result.output
    return _json(out)


# ----------------------------------------------------------------- the library


@pytest.mark.slow
def test_load_model_reads_production_a_version_or_a_file(trained):
    """The store's production model by default, a version, or a .bin path: each verified,
    each with its manifest's facts as attributes."""
    v1, v2 = trained["v1"].version, trained["v2"].version
    production = load_model(models_dir=trained["models_dir"])
    assert isinstance(production, LoadedModel)
    assert (production.version, production.target, production.horizon) == (v2, "production", 2)
    assert production.path == trained["models_dir"] / "prod_model.bin"
    version = load_model(models_dir=trained["models_dir"], version=v1)
    assert (version.version, version.target, version.horizon) == (v1, "version", 1)
    by_path = load_model(trained["models_dir"] / f"model_{v1}.bin")
    assert (by_path.version, by_path.target) == (v1, "model_file")

    assert version.model_type == "xgb"
    assert version.feature_spec.hash == version.feature_spec_hash
    assert version.feature_columns == tuple(version.manifest["feature_columns"])
    assert version.data_window["tickers"] == list(TICKERS)
    assert version.metrics["accuracy"] == trained["v1"].metrics["accuracy"]
    assert version.warmup_rows > 0


def test_the_decision_threshold_is_the_backtests():
    from marketpredictor_train.predictor import DECISION_THRESHOLD
    from marketpredictor_train.validation import metrics

    assert DECISION_THRESHOLD == metrics.DECISION_THRESHOLD


@pytest.mark.slow
def test_predict_returns_every_row_with_complete_features(trained, sample_frame):
    model = load_model(models_dir=trained["models_dir"], version=trained["v1"].version)
    predictions = model.predict(sample_frame)
    assert predictions.columns == ["ticker", "date", "probability_up", "prediction"]
    assert predictions.schema["date"] == pl.Date
    assert predictions.schema["probability_up"] == pl.Float64
    rows = sample_frame.group_by("ticker").len().sort("ticker")
    per_ticker = predictions.group_by("ticker").len().sort("ticker")
    for (ticker, n), (same, predicted) in zip(
        rows.iter_rows(), per_ticker.iter_rows(), strict=True
    ):
        assert ticker == same
        assert predicted == n - model.warmup_rows  # only the warm-up has no prediction
    assert predictions.equals(predictions.sort("ticker", "date"))
    proba = predictions.get_column("probability_up").to_numpy()
    assert ((proba > 0) & (proba < 1)).all()
    expected = np.where(proba >= 0.5, "up", "down")
    assert (predictions.get_column("prediction").to_numpy() == expected).all()


@pytest.mark.slow
def test_predict_accepts_pandas_and_the_file_shapes(trained, sample_frame):
    """A pandas frame (date as a column or as the index), capitalised column names with
    'Adj Close', dates as text, a LazyFrame: all give the same predictions."""
    model = load_model(models_dir=trained["models_dir"])
    expected = model.predict(sample_frame)
    as_pandas = sample_frame.to_pandas()
    assert model.predict(as_pandas).equals(expected)
    assert model.predict(as_pandas.set_index("date")).equals(expected)
    shaped = sample_frame.with_columns(pl.col("date").cast(pl.String)).rename(
        {"date": "Date", "ticker": "Symbol", "close": "Close", "adj_close": "Adj Close"}
    )
    assert model.predict(shaped).equals(expected)
    assert model.predict(sample_frame.lazy()).equals(expected)


@pytest.mark.slow
def test_data_too_short_for_the_warm_up_is_refused_clearly(trained, sample_frame):
    model = load_model(models_dir=trained["models_dir"])
    short = sample_frame.group_by("ticker", maintain_order=True).head(model.warmup_rows)
    with pytest.raises(DataError, match="Too little data to predict") as caught:
        model.predict(short)
    assert f"at least {model.warmup_rows + 1} rows per ticker" in caught.value.message
    just_enough = sample_frame.group_by("ticker", maintain_order=True).head(model.warmup_rows + 1)
    assert model.predict(just_enough).height == len(TICKERS)


@pytest.mark.slow
def test_bad_ohlcv_is_refused_naming_the_rows(trained, sample_frame):
    model = load_model(models_dir=trained["models_dir"])
    broken = sample_frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(-1.0).otherwise(pl.col("close")).alias("close")
    )
    with pytest.raises(DataError, match="prices <= 0"):
        model.predict(broken)


@pytest.mark.slow
def test_load_model_refuses_what_commands_refuse(trained, tmp_path):
    with pytest.raises(StoreError, match="No production model"):
        load_model(models_dir=tmp_path / "empty")
    with pytest.raises(ConfigError, match="Unknown model version"):
        load_model(models_dir=trained["models_dir"], version="20000101_000000")
    tampered = tmp_path / "tampered.bin"
    data = bytearray((trained["models_dir"] / "prod_model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(tampered)
    with pytest.raises(ConfigError, match="two models"):
        load_model(tampered, models_dir=trained["models_dir"])


@pytest.mark.slow
def test_loading_and_predicting_print_nothing(trained, sample_frame, capsys):
    """No stray lines from a library call, with logging left unconfigured."""
    load_model(models_dir=trained["models_dir"]).predict(sample_frame)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


@pytest.mark.slow
def test_importing_and_predicting_pull_in_only_what_prediction_needs(trained):
    code = f"""
import sys, polars as pl
HEAVY = ("xgboost", "mlflow", "optuna", "lightgbm", "typer", "yfinance", "matplotlib",
         "pydantic_settings", "pandas_ta")
from marketpredictor_train import load_model
imported = sorted(m for m in HEAVY if m in sys.modules)
model = load_model(models_dir={str(trained["models_dir"])!r})
close = 10.0 + pl.int_range(120, eager=True) * 0.01
frame = pl.DataFrame({{
    "date": pl.date_range(pl.date(2020, 1, 1), pl.date(2020, 12, 31), eager=True)[:120],
    "ticker": ["T"] * 120, "open": close, "high": close + 0.5, "low": close - 0.5,
    "close": close, "volume": 1000.0,
}})
model.predict(frame)
print(imported, sorted(m for m in HEAVY if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    on_import, after_predict = proc.stdout.strip().splitlines()[-1].split("] [")
    assert on_import == "["
    assert after_predict == "'xgboost']"  # the model's own library, and nothing else


# ----------------------------------------------------------------- mptrain predict


@pytest.mark.slow
def test_predict_gives_one_row_per_ticker_for_the_last_date(cli, trained, tmp_path):
    doc = _predict(cli, trained, out=tmp_path / "p.json")
    assert doc["command"] == "predict" and doc["status"] == "predicted"
    assert doc["exit_code"] == 0 and doc["error"] is None
    assert (doc["target"], doc["version"], doc["horizon"]) == (
        "production",
        trained["v2"].version,
        2,
    )
    assert doc["date"] == doc["data_window"]["end"] and doc["all_dates"] is False
    assert [p["ticker"] for p in doc["predictions"]] == list(TICKERS)
    assert {p["date"] for p in doc["predictions"]} == {doc["date"]}
    assert doc["n_predictions"] == 2 and doc["decision_threshold"] == 0.5
    for p in doc["predictions"]:
        assert p["prediction"] == ("up" if p["probability_up"] >= 0.5 else "down")


@pytest.mark.slow
def test_the_table_shows_the_predictions(cli, trained):
    result = cli("predict", *DATA, "--models-dir", trained["models_dir"])
    assert result.exit_code == 0, result.output
    assert "P(up over the next 2 trading days)" in result.output
    for ticker in TICKERS:
        assert ticker in result.output


@pytest.mark.slow
def test_library_cli_and_backtest_give_identical_probabilities(
    cli, trained, sample_frame, tmp_path
):
    """`predict --all-dates` equals load_model().predict() on the same data, bit for bit;
    on the backtest dates both equal the probabilities train's own backtest used: recomputed
    through the same modelling table, and through the log loss, Brier score and accuracy
    the backtest stored in the model's manifest."""
    from marketpredictor_train.dataset import build_dataset
    from marketpredictor_train.features import make_labels
    from marketpredictor_train.models.trained import TrainedModel
    from marketpredictor_train.store import read_model_file
    from marketpredictor_train.validation.metrics import scored_metrics

    v1 = trained["v1"]
    out = tmp_path / "all.parquet"
    doc = _predict(
        cli,
        trained,
        "--version",
        v1.version,
        "--all-dates",
        "--output",
        out,
        out=tmp_path / "a.json",
    )
    from_cli = pl.read_parquet(out)
    from_library = load_model(models_dir=trained["models_dir"], version=v1.version).predict(
        sample_frame
    )
    assert from_cli.equals(from_library)
    assert doc["n_predictions"] == from_library.height

    # The backtest rows as train built them, scored by the saved model.
    manifest = read_model_file(Path(v1.model_path)).manifest
    model = TrainedModel.from_model_file(read_model_file(Path(v1.model_path)))
    dataset = build_dataset(
        sample_frame,
        model.spec,
        horizon=1,
        dead_band=0.0,
        backtest_months=6,
        purge_gap=1,
    )
    assert dataset.backtest.height == v1.n_test
    backtest_proba = model.predict_proba(dataset.backtest, model.spec)
    joined = dataset.backtest.select("ticker", "date", "label").join(
        from_cli, on=["ticker", "date"], how="left"
    )
    assert joined.get_column("probability_up").null_count() == 0
    assert np.array_equal(joined.get_column("probability_up").to_numpy(), backtest_proba)

    # ... and the metrics the backtest stored, from the CLI's probabilities alone.
    labels = make_labels(sample_frame, horizon=1, dead_band=0.0)
    scored = (
        from_cli.filter(
            pl.col("date") >= pl.lit(manifest["data_window"]["backtest_start"]).str.to_date()
        )
        .join(labels, on=["ticker", "date"], how="inner")
        .drop_nulls("label")
    )
    again = scored_metrics(
        scored.get_column("label").to_numpy(), scored.get_column("probability_up").to_numpy()
    )
    for name in ("accuracy", "log_loss", "brier", "roc_auc", "n_samples"):
        assert again[name] == pytest.approx(manifest["metrics"][name], rel=1e-12, abs=1e-15), name


@pytest.mark.slow
def test_date_and_all_dates(cli, trained, tmp_path):
    every = _predict(cli, trained, "--all-dates", out=tmp_path / "all.json")
    assert every["all_dates"] is True and every["date"] is None
    dates = sorted({p["date"] for p in every["predictions"]})
    assert len(dates) > 400
    middle = dates[len(dates) // 2]
    one_day = _predict(cli, trained, "--date", middle, out=tmp_path / "day.json")
    assert one_day["date"] == middle
    assert one_day["predictions"] == [p for p in every["predictions"] if p["date"] == middle]


@pytest.mark.slow
def test_version_and_model_file_choose_the_model(cli, trained, tmp_path):
    v1 = trained["v1"].version
    by_version = _predict(cli, trained, "--version", v1, out=tmp_path / "v.json")
    by_file = _predict(
        cli,
        trained,
        "--model-file",
        trained["models_dir"] / f"model_{v1}.bin",
        out=tmp_path / "f.json",
    )
    production = _predict(cli, trained, out=tmp_path / "p.json")
    assert (by_version["target"], by_version["version"], by_version["horizon"]) == (
        "version",
        v1,
        1,
    )
    assert (by_file["target"], by_file["version"]) == ("model_file", v1)
    assert by_file["predictions"] == by_version["predictions"]
    assert production["version"] == trained["v2"].version
    assert production["predictions"] != by_version["predictions"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_files_hold_the_predictions(cli, trained, tmp_path, suffix):
    out = tmp_path / f"predictions{suffix}"
    doc = _predict(cli, trained, "--all-dates", "--output", out, out=tmp_path / "p.json")
    assert doc["output"] == str(out)
    frame = pl.read_csv(out, try_parse_dates=True) if suffix == ".csv" else pl.read_parquet(out)
    assert frame.columns == ["ticker", "date", "probability_up", "prediction"]
    assert frame.height == doc["n_predictions"]
    records = [{**row, "date": row["date"].isoformat()} for row in frame.iter_rows(named=True)]
    assert records == doc["predictions"]  # the CSV keeps every digit too


@pytest.mark.slow
def test_predict_errors_exit_1(cli, trained, tmp_path):
    """No production model, an unreadable model file, data that ends before --date: exit 1
    with a clear message, and the --output-json document says so."""
    out = tmp_path / "err.json"
    empty = cli("predict", *DATA, "--models-dir", tmp_path / "none", "--output-json", out)
    assert empty.exit_code == 1 and "No production model" in empty.output
    assert _json(out)["error"]["type"] == "StoreError" and _json(out)["status"] == "failed"

    broken = tmp_path / "broken.bin"
    shutil.copyfile(trained["models_dir"] / "prod_model.bin", broken)
    broken.write_bytes(broken.read_bytes()[:-10])
    unreadable = cli("predict", *DATA, "--model-file", broken)
    assert unreadable.exit_code == 1 and "truncated" in unreadable.output

    late = cli("predict", *DATA, "--models-dir", trained["models_dir"], "--date", "2030-01-02")
    assert late.exit_code == 1
    assert "The data ends 2013-03-01, before the requested date 2030-01-02" in " ".join(
        late.output.split()
    )
    assert "Traceback" not in empty.output + unreadable.output + late.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--date", "2013-02-30"), "--date"),
        (("--date", "2013-02-01", "--all-dates"), "contradict"),
        (("--output", "predictions.txt"), ".csv or .parquet"),
        (("--version", "nope"), "Malformed model version"),
        (("--version", "20000101_000000"), "Unknown model version"),
        (("--period", "7y"), "--period"),
    ],
)
@pytest.mark.slow
def test_bad_options_exit_3(cli, trained, args, needle):
    result = cli("predict", *DATA, "--models-dir", trained["models_dir"], *args)
    assert result.exit_code == 3, result.output
    assert needle in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_version_and_model_file_together_exit_3(cli, trained):
    v1 = trained["v1"].version
    result = cli(
        "predict",
        *DATA,
        "--models-dir",
        trained["models_dir"],
        "--version",
        v1,
        "--model-file",
        trained["models_dir"] / f"model_{v1}.bin",
    )
    assert result.exit_code == 3 and "give one of them" in result.output


@pytest.mark.slow
def test_a_date_without_bars_exits_1_and_says_why(cli, trained):
    result = cli("predict", *DATA, "--models-dir", trained["models_dir"], "--date", "2013-02-02")
    assert result.exit_code == 1
    assert "No predictions for 2013-02-02" in " ".join(result.output.split())
