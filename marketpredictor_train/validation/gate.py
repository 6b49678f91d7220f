"""The promotion gate, the one place a model's pass or fail is decided: the thresholds
(:func:`check_thresholds`), then champion (production) vs challenger (:func:`decide`, for
`train`), or the thresholds alone (:func:`verdict`, for `mptrain validate`). Reports,
renderers and JSON read these results; they never recompute them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether the new model may become production, and why (``reason`` is user-facing)."""

    passed: bool
    promote: bool
    reason: str
    failed_metrics: tuple[str, ...] = ()

    @property
    def forced(self) -> bool:
        """Promoted although it failed the gate (--force)."""
        return self.promote and not self.passed


@dataclass(frozen=True, slots=True)
class ThresholdCheck:
    """One threshold with the measured value; a missing or undefined value fails."""

    metric: str
    threshold: float
    value: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "value": self.value, "passed": self.passed}


def check_thresholds(
    metrics: Mapping[str, Any], thresholds: Mapping[str, float]
) -> dict[str, ThresholdCheck]:
    """Each threshold (a floor) against the measured value, in the thresholds' order."""
    out = {}
    for name, floor in thresholds.items():
        value = metrics.get(name)
        out[name] = ThresholdCheck(
            metric=name,
            threshold=float(floor),
            value=None if value is None else float(value),
            passed=value is not None and float(value) >= float(floor),
        )
    return out


def _failed(checks: Mapping[str, ThresholdCheck]) -> tuple[str, ...]:
    return tuple(name for name, check in checks.items() if not check.passed)


def _threshold_reason(checks: Mapping[str, ThresholdCheck], prefix: str) -> str:
    """'<prefix> - accuracy below threshold (51.00% < 60.00%) (also below: f1)'."""
    failed = _failed(checks)
    first = checks[failed[0]]
    value = "-" if first.value is None else f"{first.value:.2%}"
    reason = f"{prefix} - {first.metric} below threshold ({value} < {first.threshold:.2%})"
    if len(failed) > 1:
        reason += " (also below: " + ", ".join(failed[1:]) + ")"
    return reason


def verdict(metrics: Mapping[str, Any], thresholds: Mapping[str, float]) -> GateDecision:
    """`mptrain validate`'s decision: every threshold met, or which one was not."""
    checks = check_thresholds(metrics, thresholds)
    if failed := _failed(checks):
        return GateDecision(False, False, _threshold_reason(checks, "Validation failed"), failed)
    return GateDecision(True, False, "Validation passed - every metric meets its threshold")


def decide(
    metrics: Mapping[str, float],
    thresholds: Mapping[str, float],
    *,
    production_metrics: Mapping[str, float] | None,
    challenger_on_common_rows: Mapping[str, float] | None = None,
    primary_metric: str = "accuracy",
    force: bool = False,
    dry_run: bool = False,
) -> GateDecision:
    """Apply the thresholds (to ``metrics``, the whole backtest) and the
    not-worse-than-production rule (``challenger_on_common_rows`` against
    ``production_metrics``: both models scored on the same rows).

    ``passed`` says whether the model cleared the gate; ``promote`` whether it becomes
    production (force overrides a failed gate, dry-run forbids any promotion)."""
    checks = check_thresholds(metrics, thresholds)
    if failed := _failed(checks):
        reason = _threshold_reason(checks, "Model NOT promoted")
        passed = False
    elif production_metrics is not None and (
        _value(challenger := challenger_on_common_rows or metrics, primary_metric)
        < _value(production_metrics, primary_metric)
    ):
        failed = (primary_metric,)
        reason = (
            f"Model NOT promoted - {primary_metric} below the production model's "
            f"({_value(challenger, primary_metric):.2%} < "
            f"{_value(production_metrics, primary_metric):.2%} on the same backtest rows)"
        )
        passed = False
    else:
        passed = True
        reason = "Passed every threshold" + (
            " and is not worse than production" if production_metrics is not None else ""
        )

    if dry_run:
        return GateDecision(passed, False, f"Dry run - not promoted ({reason})", failed)
    if force and not passed:
        because = reason.removeprefix("Model NOT promoted - ")
        return GateDecision(passed, True, f"Forced promotion despite: {because}", failed)
    return GateDecision(passed, passed, reason, failed)


def _value(metrics: Mapping[str, float | None], name: str) -> float:
    """A metric's value; a missing or undefined one (ROC AUC with one class) counts as 0,
    so it can never pass a threshold or beat production."""
    value = metrics.get(name)
    return 0.0 if value is None else float(value)


def decide_unvalidated(*, force: bool, dry_run: bool) -> GateDecision:
    """The decision of a run with --skip-validation: with no backtest there is no evidence
    the model is good enough, so it is never promoted unless forced."""
    if dry_run:
        return GateDecision(False, False, "Dry run - not promoted (validation skipped)")
    if force:
        return GateDecision(
            False, True, "Forced promotion without validation (--skip-validation --force)"
        )
    return GateDecision(
        False,
        False,
        "Validation skipped (--skip-validation) - saved, not promoted; check it with "
        "`mptrain validate --version V`, then promote it with `mptrain rollback --version V` "
        "or retrain with --force",
    )
