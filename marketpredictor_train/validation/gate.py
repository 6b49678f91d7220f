"""The promotion gate: thresholds, then champion (production) vs challenger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether the new model may become production, and why (``reason`` is user-facing)."""

    passed: bool
    promote: bool
    reason: str
    failed_metrics: tuple[str, ...] = ()


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
    failed = tuple(m for m, floor in thresholds.items() if _value(metrics, m) < floor)
    if failed:
        first = failed[0]
        reason = (
            f"Model NOT promoted - {first} below threshold "
            f"({_value(metrics, first):.2%} < {thresholds[first]:.2%})"
        )
        if len(failed) > 1:
            reason += " (also below: " + ", ".join(failed[1:]) + ")"
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
