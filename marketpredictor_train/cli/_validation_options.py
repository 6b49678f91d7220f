"""Options of the validation stage, shared by `train` and `validate`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class PrimaryMetricChoice(StrEnum):
    accuracy = "accuracy"
    precision = "precision"
    recall = "recall"
    f1 = "f1"
    roc_auc = "roc_auc"


BacktestMonthsOpt = Annotated[
    int | None,
    typer.Option(
        "--backtest-months",
        min=1,
        max=60,
        help="Months at the end of the data held out as the backtest [default: 6].",
    ),
]
EmbargoDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--embargo-days",
        min=0,
        help="Extra trading days dropped between training and backtest, on top of the "
        "label horizon [default: 0].",
    ),
]
CostPerTradeOpt = Annotated[
    float | None,
    typer.Option(
        "--cost-per-trade",
        min=0.0,
        max=0.1,
        help="Trading cost per unit of capital bought or sold, for the trading view "
        "(0.0005 = 5 basis points) [default: 0.0005].",
    ),
]
PrimaryMetricOpt = Annotated[
    PrimaryMetricChoice | None,
    typer.Option(
        "--primary-metric",
        help="Metric on which a new model must not be worse than production, on the same "
        "backtest rows [default: accuracy].",
    ),
]
ReportDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        file_okay=False,
        help="Folder for the validation report (report.md, report.html, report.json, plots) "
        "[default: models/reports/<version>/; for a dry run logs/reports/].",
    ),
]
MinAccuracyOpt = Annotated[
    float | None,
    typer.Option(
        "--min-accuracy", min=0.0, max=1.0, help="Minimum backtest accuracy [default: 0.60]."
    ),
]
MinPrecisionOpt = Annotated[
    float | None,
    typer.Option(
        "--min-precision", min=0.0, max=1.0, help="Minimum backtest precision [default: 0.55]."
    ),
]
MinRecallOpt = Annotated[
    float | None,
    typer.Option("--min-recall", min=0.0, max=1.0, help="Minimum backtest recall [default: 0.50]."),
]
MinF1Opt = Annotated[
    float | None,
    typer.Option("--min-f1", min=0.0, max=1.0, help="Minimum backtest F1 score [default: 0.52]."),
]
