"""The promotion gate's rules, one at a time: thresholds, skill over the naive baselines,
probabilities against the base rate, and the champion's non-inferiority rule, decided on
intervals, never on a point estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from marketpredictor_train.validation.backtest import Comparison, SkillEvidence, _paired_interval
from marketpredictor_train.validation.gate import decide, decide_unvalidated, verdict

THRESHOLDS = {"accuracy": 0.6, "precision": 0.55, "recall": 0.5, "f1": 0.52}
GOOD = {"accuracy": 0.7, "precision": 0.7, "recall": 0.7, "f1": 0.7, "roc_auc": 0.75}
SKILLED = SkillEvidence(
    metric="accuracy",
    baseline="always_up",
    model_value=0.70,
    baseline_value=0.52,
    difference_ci=(0.12, 0.24),
    level=0.9,
    n_rows=480,
    base_rate=0.52,
    log_loss=0.60,
    base_rate_log_loss=0.69,
    brier=0.21,
    base_rate_brier=0.25,
)


def _comparison(low: float, high: float, diff: float, *, comparable: bool = True) -> Comparison:
    return Comparison(
        production_version="20250101_000000",
        production_model_type="xgb",
        n_common=480,
        primary_metric="accuracy",
        new={"accuracy": 0.6 + diff},
        production={"accuracy": 0.6},
        difference={"accuracy": diff},
        primary_difference_ci=(low, high),
        primary_difference_method="paired day blocks",
        mcnemar={"p_value": 0.5},
        trading={},
        level=0.9,
        comparable=comparable,
    )


def test_thresholds_alone_decide_without_production_or_skill_evidence():
    decision = decide(GOOD, THRESHOLDS)
    assert decision.passed and decision.promote
    decision = decide({**GOOD, "recall": 0.4}, THRESHOLDS)
    assert not decision.promote and decision.failed_metrics == ("recall",)
    assert decision.reason.startswith("Model NOT promoted - recall below threshold (40.00%")


def test_a_model_worse_than_always_up_is_refused_and_the_reason_names_the_baseline():
    trend = dataclasses.replace(
        SKILLED, model_value=0.673, baseline_value=0.846, difference_ci=(-0.22, -0.13), n_rows=214
    )
    decision = decide(GOOD, THRESHOLDS, skill=trend)
    assert not decision.promote and not decision.passed
    assert decision.reason.startswith(
        "Model NOT promoted - no skill: 67.3% vs always-up 84.6% on the same 214 rows"
    )


def test_a_positive_point_estimate_is_not_skill_when_the_interval_reaches_zero():
    lucky = dataclasses.replace(
        SKILLED, model_value=0.53, baseline_value=0.52, difference_ci=(-0.02, 0.04)
    )
    decision = decide(GOOD, THRESHOLDS, skill=lucky)
    assert not decision.promote
    assert "no skill shown" in decision.reason and "does not rule out" in decision.reason


def test_probabilities_must_beat_the_training_base_rate():
    overconfident = dataclasses.replace(SKILLED, log_loss=0.785)
    decision = decide(GOOD, THRESHOLDS, skill=overconfident)
    assert not decision.promote
    assert (
        "probabilities no better than the base rate: log loss 0.7850 vs 0.6900" in decision.reason
    )
    assert decide(GOOD, THRESHOLDS, skill=overconfident, skill_gate=False).promote


def test_force_overrides_the_skill_gate_and_says_so():
    worse = dataclasses.replace(SKILLED, difference_ci=(-0.2, -0.1), model_value=0.5)
    forced = decide(GOOD, THRESHOLDS, skill=worse, force=True)
    assert forced.promote and forced.forced and not forced.passed
    assert forced.reason.startswith("Forced promotion despite: no skill")


def test_champion_non_inferiority_reads_the_interval_not_the_point_estimate():
    # worse on the point estimate, but the interval shows it is at most 0.8 pt worse
    slightly_worse = decide(
        GOOD, THRESHOLDS, skill=SKILLED, comparison=_comparison(-0.008, 0.004, -0.002)
    )
    assert slightly_worse.promote, slightly_worse.reason
    assert "no worse than production" in slightly_worse.reason
    # better on the point estimate, but too noisy to rule out being 3 points worse
    noisy_better = decide(
        GOOD, THRESHOLDS, skill=SKILLED, comparison=_comparison(-0.03, 0.05, 0.01)
    )
    assert not noisy_better.promote
    assert (
        "may be worse than production 20250101_000000's by more than 1.0 pts" in noisy_better.reason
    )
    assert noisy_better.failed_metrics == ("accuracy",)
    # an identical challenger (a tie) passes: it learned from newer data
    tie = decide(GOOD, THRESHOLDS, skill=SKILLED, comparison=_comparison(0.0, 0.0, 0.0))
    assert tie.promote
    # the margin is the user's
    strict = decide(
        GOOD,
        THRESHOLDS,
        skill=SKILLED,
        comparison=_comparison(-0.008, 0.004, -0.002),
        champion_margin=0.0,
    )
    assert not strict.promote


def test_a_champion_that_is_not_comparable_is_left_out():
    unfair = _comparison(-0.2, -0.1, -0.15, comparable=False)
    assert decide(GOOD, THRESHOLDS, skill=SKILLED, comparison=unfair).promote


def test_ten_challengers_within_noise_are_decided_by_the_documented_rule():
    """Ten challengers whose difference to one champion is within noise (the paired 90%
    interval contains 0), from real paired day-level intervals: each is promoted exactly
    when the interval's lower bound is above -margin, whatever its point estimate."""
    rng = np.random.default_rng(25)  # a draw with both outcomes among ten within-noise pairs
    n_days, tickers = 120, 8
    dates = np.repeat(np.arange(n_days), tickers)
    y = rng.integers(0, 2, dates.size)

    def model_of_the_same_quality() -> np.ndarray:
        return np.clip(0.5 + 0.1 * (2 * y - 1) + rng.normal(0, 0.25, y.size), 0.01, 0.99)

    champion = model_of_the_same_quality()
    outcomes = []
    for k in range(10):
        # the champion's calls, a growing share of rows replaced by another model as good
        other = model_of_the_same_quality()
        challenger = np.where(rng.random(y.size) < 0.1 + 0.04 * k, other, champion)
        low, high = _paired_interval(
            "accuracy", dates, y, challenger, champion, horizon=1, level=0.9
        ).bounds
        diff = float(np.mean((challenger >= 0.5) == y) - np.mean((champion >= 0.5) == y))
        assert low <= 0 <= high, "each challenger is within noise of the champion"
        decision = decide(
            GOOD,
            THRESHOLDS,
            skill=SKILLED,
            comparison=_comparison(low, high, diff),
            champion_margin=0.02,
        )
        assert decision.promote == (low > -0.02), (k, low, high, diff)
        outcomes.append((diff, decision.promote))
    assert {promoted for _, promoted in outcomes} == {True, False}
    # a better point estimate is not enough, a worse one not disqualifying
    assert any(diff >= 0 and not promoted for diff, promoted in outcomes)
    assert any(diff < 0 and promoted for diff, promoted in outcomes)


def test_validate_applies_the_thresholds_and_the_skill_gate():
    assert verdict(GOOD, THRESHOLDS, skill=SKILLED).passed
    no_skill = dataclasses.replace(SKILLED, difference_ci=(-0.1, -0.01), model_value=0.47)
    failed = verdict(GOOD, THRESHOLDS, skill=no_skill)
    assert not failed.passed and failed.reason.startswith("Validation failed - no skill")
    assert verdict(GOOD, THRESHOLDS, skill=no_skill, skill_gate=False).passed


def test_force_and_dry_run():
    low = {**GOOD, "accuracy": 0.5}
    forced = decide(low, THRESHOLDS, force=True)
    assert forced.promote and not forced.passed and forced.forced
    dry = decide(GOOD, THRESHOLDS, dry_run=True)
    assert dry.passed and not dry.promote


def test_skipped_validation_promotes_only_when_forced():
    assert not decide_unvalidated(force=False, dry_run=False).promote
    assert decide_unvalidated(force=True, dry_run=False).promote
    assert not decide_unvalidated(force=False, dry_run=True).promote
    assert not any(decide_unvalidated(force=f, dry_run=d).passed for f in (0, 1) for d in (0, 1))


@pytest.mark.parametrize("primary", ["recall", "f1"])
def test_recall_and_f1_are_judged_for_skill_on_accuracy(primary):
    from marketpredictor_train.validation.gate import skill_metric_for

    assert skill_metric_for(primary) == "accuracy"
    assert skill_metric_for("roc_auc") == "roc_auc"
