"""The promotion gate's rules, one at a time."""

from __future__ import annotations

from marketpredictor_train.validation.gate import decide, decide_unvalidated

THRESHOLDS = {"accuracy": 0.6, "precision": 0.55, "recall": 0.5, "f1": 0.52}
GOOD = {"accuracy": 0.7, "precision": 0.7, "recall": 0.7, "f1": 0.7, "roc_auc": 0.75}


def test_thresholds_alone_decide_without_production():
    decision = decide(GOOD, THRESHOLDS, production_metrics=None)
    assert decision.passed and decision.promote
    low = {**GOOD, "recall": 0.4}
    decision = decide(low, THRESHOLDS, production_metrics=None)
    assert not decision.promote and decision.failed_metrics == ("recall",)
    assert decision.reason.startswith("Model NOT promoted - recall below threshold (40.00%")


def test_not_worse_than_production_on_the_common_rows():
    """The comparison uses both models on the same rows, not the new model's whole
    backtest: here the whole backtest looks better, the common rows do not."""
    decision = decide(
        GOOD,
        THRESHOLDS,
        production_metrics={**GOOD, "accuracy": 0.66},
        challenger_on_common_rows={**GOOD, "accuracy": 0.65},
    )
    assert not decision.promote
    assert "accuracy below the production model's (65.00% < 66.00%" in decision.reason
    tie = decide(GOOD, THRESHOLDS, production_metrics=GOOD, challenger_on_common_rows=GOOD)
    assert tie.promote  # "not worse" lets an equal model through


def test_an_undefined_primary_metric_never_beats_production():
    decision = decide(
        GOOD,
        THRESHOLDS,
        production_metrics=GOOD,
        challenger_on_common_rows={**GOOD, "roc_auc": None},
        primary_metric="roc_auc",
    )
    assert not decision.promote and decision.failed_metrics == ("roc_auc",)


def test_force_and_dry_run():
    low = {**GOOD, "accuracy": 0.5}
    forced = decide(low, THRESHOLDS, production_metrics=None, force=True)
    assert forced.promote and not forced.passed
    dry = decide(GOOD, THRESHOLDS, production_metrics=None, dry_run=True)
    assert dry.passed and not dry.promote


def test_skipped_validation_promotes_only_when_forced():
    assert not decide_unvalidated(force=False, dry_run=False).promote
    assert decide_unvalidated(force=True, dry_run=False).promote
    assert not decide_unvalidated(force=False, dry_run=True).promote
    assert not any(decide_unvalidated(force=f, dry_run=d).passed for f in (0, 1) for d in (0, 1))
