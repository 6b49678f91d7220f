"""Probability calibration: a monotone map from a model's P(up) to observed up-rates,
fitted on the last purged walk-forward fold of the training part (rows the model fitted on
that fold never saw) and stored in the model file's manifest as plain numbers, no pickle.

``isotonic`` (scikit-learn's IsotonicRegression: a step function, needs a few hundred rows)
or ``platt`` (a logistic fit on the log-odds: two numbers, smoother with few rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marketpredictor_train.errors import ModelFileError

if TYPE_CHECKING:
    import numpy as np

METHODS = ("isotonic", "platt")
_EPS = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibration map; :meth:`apply` turns raw P(up) into calibrated P(up)."""

    method: str
    x: tuple[float, ...] = ()  # isotonic: the knots of the step function
    y: tuple[float, ...] = ()
    a: float = 1.0  # platt: P = sigmoid(a * logit(p) + b)
    b: float = 0.0
    n_rows: int = 0  # rows it was fitted on
    fitted_on: dict[str, Any] | None = None

    def apply(self, proba: np.ndarray) -> np.ndarray:
        import numpy as np

        p = np.clip(np.asarray(proba, dtype=float), _EPS, 1 - _EPS)
        if self.method == "isotonic":
            out = np.interp(p, np.asarray(self.x), np.asarray(self.y))
        else:
            out = 1.0 / (1.0 + np.exp(-(self.a * np.log(p / (1 - p)) + self.b)))
        return np.clip(out, _EPS, 1 - _EPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "a": self.a,
            "b": self.b,
            "n_rows": self.n_rows,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Calibrator:
        """The calibrator of a manifest; ModelFileError (exit 1) when it is malformed."""
        try:
            method = doc["method"]
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}")
            x = tuple(float(v) for v in doc.get("x") or ())
            y = tuple(float(v) for v in doc.get("y") or ())
            if method == "isotonic" and (len(x) != len(y) or len(x) < 1):
                raise ValueError("isotonic knots x and y must be non-empty and of one length")
            return cls(
                method=method,
                x=x,
                y=y,
                a=float(doc.get("a", 1.0)),
                b=float(doc.get("b", 0.0)),
                n_rows=int(doc.get("n_rows", 0)),
                fitted_on=doc.get("fitted_on"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"Model manifest has a malformed calibration: {exc}") from exc


def fit_calibrator(
    method: str, proba: np.ndarray, labels: np.ndarray, *, fitted_on: dict[str, Any]
) -> Calibrator:
    """Fit ``method`` on out-of-sample probabilities and their labels."""
    import numpy as np

    p = np.clip(np.asarray(proba, dtype=float), _EPS, 1 - _EPS)
    y = np.asarray(labels).astype(int)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return Calibrator(
            method,
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
            n_rows=int(y.size),
            fitted_on=fitted_on,
        )
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        logit = np.log(p / (1 - p)).reshape(-1, 1)
        fit = LogisticRegression(C=1e6).fit(logit, y)
        return Calibrator(
            method,
            a=float(fit.coef_[0][0]),
            b=float(fit.intercept_[0]),
            n_rows=int(y.size),
            fitted_on=fitted_on,
        )
    raise ValueError(f"unknown calibration method {method!r}")
