"""The promotion gate, the one place a model's pass or fail is decided. Reports, renderers
and JSON read its result; they never recompute it.

A new model is promoted when all of these hold on its backtest (`train`, :func:`decide`):

1. **Thresholds**: each of the seed's metrics meets its floor (``--min-accuracy`` ...).
2. **Skill** (on by default, ``--no-skill-gate`` to leave it out): it beats the better of
   the naive baselines (always up, yesterday's direction) on the same rows, and not by
   luck: the lower bound of the paired day-block interval of (model - baseline) is above 0;
   and its probabilities forecast better than a constant forecast of the training base
   rate (lower log loss and lower Brier score).
3. **Champion** (when there is a comparable production model): it is not worse than
   production by more than ``--champion-margin`` on the primary metric, on the same rows:
   the lower bound of the paired interval of (challenger - champion) is above -margin
   (non-inferiority). A tie passes: a model as good as the champion replaces it, since it
   learned from newer data. The point estimate alone never decides.

`mptrain validate` applies 1 and 2 to a saved model (:func:`verdict`). ``--force``
promotes a model that failed, and says so; ``--dry-run`` never promotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketpredictor_train.validation.backtest import Comparison, SkillEvidence

_RATE_METRICS = frozenset({"accuracy", "precision", "recall", "f1"})
_BASELINE_NAMES = {"always_up": "always-up", "yesterday_direction": "yesterday's direction"}


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One rule of the gate: whether it passed, and what was measured, in words."""

    name: str  # "thresholds" | "skill" | "probabilities" | "champion"
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether the new model may become production, and why (``reason`` is user-facing)."""

    passed: bool
    promote: bool
    reason: str
    failed_metrics: tuple[str, ...] = ()
    checks: tuple[GateCheck, ...] = ()

    @property
    def forced(self) -> bool:
        """Promoted although it failed the gate (--force)."""
        return self.promote and not self.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "promote": self.promote,
            "forced": self.forced,
            "reason": self.reason,
            "failed_metrics": list(self.failed_metrics),
            "checks": [c.to_dict() for c in self.checks],
        }


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


def skill_metric_for(primary_metric: str) -> str:
    """The metric the skill gate compares with the baselines: the primary metric, except
    recall and F1, which always-up wins by construction (it calls every up move), so
    accuracy stands in for them."""
    return "accuracy" if primary_metric in ("recall", "f1") else primary_metric


def _threshold_check(checks: Mapping[str, ThresholdCheck]) -> GateCheck:
    failed = [c for c in checks.values() if not c.passed]
    if not failed:
        return GateCheck("thresholds", True, "every metric meets its threshold")
    first = failed[0]
    value = "-" if first.value is None else f"{first.value:.2%}"
    detail = f"{first.metric} below threshold ({value} < {first.threshold:.2%})"
    if len(failed) > 1:
        detail += " (also below: " + ", ".join(c.metric for c in failed[1:]) + ")"
    return GateCheck("thresholds", False, detail)


def _amount(metric: str, value: float) -> str:
    """A difference in the metric's units: points for rates, plain for ROC AUC."""
    return f"{value * 100:+.1f} pts" if metric in _RATE_METRICS else f"{value:+.4f}"


def _value(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric in _RATE_METRICS else f"{value:.4f}"


def _interval(metric: str, ci: tuple[float, float], level: float) -> str:
    scale, unit = (100, " pts") if metric in _RATE_METRICS else (1, "")
    fmt = ".1f" if metric in _RATE_METRICS else ".4f"
    return f"{level:.0%} CI {ci[0] * scale:+{fmt}} .. {ci[1] * scale:+{fmt}}{unit}"


def _skill_checks(skill: SkillEvidence) -> tuple[GateCheck, GateCheck]:
    name = _BASELINE_NAMES.get(skill.baseline, skill.baseline)
    m = skill.metric
    measured = (
        f"{_value(m, skill.model_value)} vs {name} {_value(m, skill.baseline_value)} "
        f"on the same {skill.n_rows:,} rows (difference {_amount(m, skill.difference)}, "
        f"{_interval(m, skill.difference_ci, skill.level)})"
    )
    if skill.beats_baseline:
        beats = GateCheck("skill", True, f"beats {name}: {measured}")
    elif skill.difference > 0:
        beats = GateCheck(
            "skill",
            False,
            f"no skill shown: {measured}; the interval does not rule out no difference",
        )
    else:
        beats = GateCheck("skill", False, f"no skill: {measured}")
    probabilities = (
        f"log loss {skill.log_loss:.4f} vs {skill.base_rate_log_loss:.4f} and Brier "
        f"{skill.brier:.4f} vs {skill.base_rate_brier:.4f} for a constant forecast of the "
        f"training base rate ({skill.base_rate:.1%} up)"
    )
    if skill.probabilities_have_skill:
        proba = GateCheck(
            "probabilities", True, f"probabilities beat the base rate: {probabilities}"
        )
    else:
        proba = GateCheck(
            "probabilities", False, f"probabilities no better than the base rate: {probabilities}"
        )
    return beats, proba


def _champion_check(comparison: Comparison, margin: float) -> GateCheck:
    m = comparison.primary_metric
    diff = comparison.primary_difference
    ci = comparison.primary_difference_ci
    measured = (
        f"difference {_amount(m, diff or 0.0)}, {_interval(m, ci, comparison.level)} on the "
        f"same {comparison.n_common:,} rows"
    )
    allowed = _amount(m, margin).lstrip("+")
    if diff is not None and ci[0] > -margin:
        return GateCheck(
            "champion",
            True,
            f"no worse than production {comparison.production_version} by more than "
            f"{allowed} on {m} ({measured})",
        )
    return GateCheck(
        "champion",
        False,
        f"{m} may be worse than production {comparison.production_version}'s by more than "
        f"{allowed} ({measured})",
    )


def _combine(checks: list[GateCheck], prefix: str, passed_text: str) -> tuple[bool, str]:
    failed = [c for c in checks if not c.passed]
    if not failed:
        details = [c.detail for c in checks if c.name != "thresholds"]
        return True, passed_text + ("; " + "; ".join(details) if details else "")
    reason = f"{prefix} - {failed[0].detail}"
    if len(failed) > 1:
        reason += " (also failed: " + ", ".join(c.name for c in failed[1:]) + ")"
    return False, reason


def decide(
    metrics: Mapping[str, Any],
    thresholds: Mapping[str, float],
    *,
    skill: SkillEvidence | None = None,
    comparison: Comparison | None = None,
    skill_gate: bool = True,
    champion_margin: float = 0.01,
    force: bool = False,
    dry_run: bool = False,
) -> GateDecision:
    """`train`'s decision: thresholds, skill (when ``skill_gate`` and evidence is given),
    then the champion (when ``comparison`` is comparable). ``passed`` says whether the
    model cleared the gate; ``promote`` whether it becomes production (force overrides a
    failed gate, dry-run forbids any promotion)."""
    threshold_checks = check_thresholds(metrics, thresholds)
    checks = [_threshold_check(threshold_checks)]
    if skill_gate and skill is not None:
        checks.extend(_skill_checks(skill))
    if comparison is not None and comparison.comparable:
        checks.append(_champion_check(comparison, champion_margin))
    passed, reason = _combine(checks, "Model NOT promoted", "Passed every threshold")
    failed_metrics = tuple(n for n, c in threshold_checks.items() if not c.passed)
    if comparison is not None and comparison.comparable and not checks[-1].passed:
        failed_metrics += (comparison.primary_metric,)
    if dry_run:
        return GateDecision(
            passed, False, f"Dry run - not promoted ({reason})", failed_metrics, tuple(checks)
        )
    if force and not passed:
        because = reason.removeprefix("Model NOT promoted - ")
        return GateDecision(
            passed, True, f"Forced promotion despite: {because}", failed_metrics, tuple(checks)
        )
    return GateDecision(passed, passed, reason, failed_metrics, tuple(checks))


def verdict(
    metrics: Mapping[str, Any],
    thresholds: Mapping[str, float],
    *,
    skill: SkillEvidence | None = None,
    skill_gate: bool = True,
) -> GateDecision:
    """`mptrain validate`'s decision on a saved model: the thresholds and the skill gate."""
    threshold_checks = check_thresholds(metrics, thresholds)
    checks = [_threshold_check(threshold_checks)]
    if skill_gate and skill is not None:
        checks.extend(_skill_checks(skill))
    passed, reason = _combine(
        checks, "Validation failed", "Validation passed - every metric meets its threshold"
    )
    failed_metrics = tuple(n for n, c in threshold_checks.items() if not c.passed)
    return GateDecision(passed, False, reason, failed_metrics, tuple(checks))


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
