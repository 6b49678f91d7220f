"""The declarative feature spec: which indicators, with which parameters.

A spec is plain data (kind + parameters per indicator) with one canonical JSON form; its
SHA-256 is saved with every model so a model is never fed features built differently from
the ones it was trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from marketpredictor_train.errors import ConfigError

SCHEMA = "mptrain.features/1"
"""Identifies the spec format and the indicator definitions; part of the hash, so changing
how an indicator is computed (a new schema) invalidates the models trained on the old one."""


@dataclass(frozen=True)
class _Param:
    default: int | float
    minimum: int | float
    kind: type  # int or float


def _i(default: int, minimum: int = 1) -> _Param:
    return _Param(default, minimum, int)


def _f(default: float, minimum: float) -> _Param:
    return _Param(default, minimum, float)


# Parameters (and their defaults) of every native indicator kind, by family.
NATIVE_KINDS: dict[str, dict[str, _Param]] = {
    # momentum
    "rsi": {"length": _i(14, 2)},
    "macd": {"fast": _i(12, 2), "slow": _i(26, 3), "signal": _i(9, 1)},
    "stoch": {"k": _i(14), "smooth_k": _i(3), "d": _i(3)},
    "roc": {"length": _i(10)},
    # volatility
    "atr": {"length": _i(14)},
    "bbands": {"length": _i(20, 2), "mult": _f(2.0, 0.0)},
    "stddev": {"length": _i(20, 2)},
    # volume
    "obv": {"length": _i(20)},
    "vwap": {"length": _i(20)},
    "volume_sma": {"length": _i(20)},
    # trend
    "adx": {"length": _i(14, 2)},
    "sma": {"length": _i(20, 2)},
    "ema": {"length": _i(20, 2)},
}

PANDAS_TA_KIND = "pandas_ta"
PANDAS_TA_MODEL_USES = ("as_is", "dist", "rel", "exclude")
"""How a pandas-ta column enters the model: as it is (already scale-free), as the close's
distance to it (close / x - 1, for price-level lines), relative to the close (x / close,
for price differences), or not at all (kept as a raw feature only)."""


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _canonical_native(kind: str, params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    schema = NATIVE_KINDS[kind]
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise ConfigError(
            f"Feature spec: indicator {kind!r} has no parameter(s) {', '.join(unknown)}.",
            hint=f"{kind!r} takes: {', '.join(schema)}.",
        )
    out: dict[str, Any] = {}
    for name, param in schema.items():
        value = params.get(name, param.default)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if param.kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(
                f"Feature spec: {kind}.{name} must be a whole number, got {value!r}.",
                hint=f"For example {kind}.{name} = {param.default}.",
            )
        if param.kind is float:
            if not is_number:
                raise ConfigError(
                    f"Feature spec: {kind}.{name} must be a number, got {value!r}.",
                    hint=f"For example {kind}.{name} = {param.default}.",
                )
            value = float(value)
        too_small = value <= param.minimum if param.kind is float else value < param.minimum
        if too_small:
            bound = f"> {param.minimum}" if param.kind is float else f">= {param.minimum}"
            raise ConfigError(
                f"Feature spec: {kind}.{name} must be {bound}, got {value!r}.",
                hint=f"The default is {param.default}.",
            )
        out[name] = value
    if kind == "macd" and out["fast"] >= out["slow"]:
        raise ConfigError(
            f"Feature spec: macd.fast ({out['fast']}) must be shorter than macd.slow "
            f"({out['slow']}).",
            hint="The usual choice is fast = 12, slow = 26, signal = 9.",
        )
    return tuple(sorted(out.items()))


def _canonical_pandas_ta(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    allowed = {"function", "kwargs", "model", "columns"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"Feature spec: a pandas_ta entry has no key(s) {', '.join(unknown)}.",
            hint="Write the indicator's own parameters under kwargs, e.g. "
            '{"kind": "pandas_ta", "function": "cmo", "kwargs": {"length": 9}, '
            '"model": "as_is"}.',
        )
    function = params.get("function")
    if not isinstance(function, str) or not function:
        raise ConfigError(
            "Feature spec: a pandas_ta entry needs 'function', the pandas-ta indicator name.",
            hint='For example {"kind": "pandas_ta", "function": "cmo", "model": "as_is"}.',
        )
    model = params.get("model")
    if model not in PANDAS_TA_MODEL_USES:
        raise ConfigError(
            f"Feature spec: pandas_ta {function!r} needs 'model', one of "
            f"{', '.join(PANDAS_TA_MODEL_USES)}; got {model!r}.",
            hint="as_is for scale-free outputs (oscillators, returns), dist for price-level "
            "lines (close / x - 1), rel for price differences (x / close), exclude to keep "
            "it out of the model.",
        )
    kwargs = params.get("kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in kwargs.items()
    ):
        raise ConfigError(
            f"Feature spec: pandas_ta {function!r} kwargs must map names to numbers, "
            f"strings or booleans; got {kwargs!r}.",
        )
    columns = params.get("columns")
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise ConfigError(
                f"Feature spec: pandas_ta {function!r} columns must be a list of pandas-ta "
                f"output names; got {columns!r}.",
            )
        columns = tuple(columns)
    return (
        ("columns", columns),
        ("function", function),
        ("kwargs", tuple(sorted(kwargs.items()))),
        ("model", model),
    )


@dataclass(frozen=True)
class Indicator:
    """One entry of a feature spec: an indicator kind and its complete parameters.

    Parameters are canonicalised on construction (defaults filled in, sorted), so two
    entries that compute the same thing compare, name and hash the same.
    """

    kind: str
    params: Mapping[str, Any] | tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        raw = dict(self.params)
        if self.kind == PANDAS_TA_KIND:
            canonical = _canonical_pandas_ta(raw)
        elif self.kind in NATIVE_KINDS:
            canonical = _canonical_native(self.kind, raw)
        else:
            raise ConfigError(
                f"Feature spec: unknown indicator kind {self.kind!r}.",
                hint=f"Known kinds: {', '.join([*NATIVE_KINDS, PANDAS_TA_KIND])} (pandas_ta "
                "computes any pandas-ta indicator).",
            )
        object.__setattr__(self, "params", canonical)

    @classmethod
    def create(cls, kind: str, **params: Any) -> Indicator:
        """``Indicator.create("rsi", length=9)``."""
        return cls(kind, params)

    def param(self, name: str) -> Any:
        return dict(self.params)[name]

    @property
    def label(self) -> str:
        """A short name for messages: ``rsi(length=14)``, ``pandas_ta cmo(length=9)``."""
        params = dict(self.params)
        if self.kind == PANDAS_TA_KIND:
            inner = ", ".join(f"{k}={v!r}" for k, v in params["kwargs"])
            return f"pandas_ta {params['function']}({inner})"
        inner = ", ".join(f"{k}={_format_value(v)}" for k, v in params.items())
        return f"{self.kind}({inner})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name, value in cast("tuple[tuple[str, Any], ...]", self.params):
            if name == "kwargs":
                value = dict(value)
            elif name == "columns" and value is not None:
                value = list(value)
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Indicator:
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
            raise ConfigError(
                f"Feature spec: each indicator must be a mapping with a 'kind'; got {data!r}.",
                hint='For example {"kind": "rsi", "length": 14}.',
            )
        params = {k: v for k, v in data.items() if k != "kind"}
        return cls(data["kind"], params)


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered, immutable list of indicators; the order fixes the column order."""

    indicators: tuple[Indicator, ...]

    def __post_init__(self) -> None:
        indicators = tuple(self.indicators)
        if not indicators:
            raise ConfigError(
                "Feature spec: no indicators.", hint="Start from default_spec().to_dict()."
            )
        seen: set[Indicator] = set()
        for ind in indicators:
            if not isinstance(ind, Indicator):
                raise ConfigError(f"Feature spec: {ind!r} is not an Indicator.")
            if ind in seen:
                raise ConfigError(
                    f"Feature spec: {ind.label} is listed twice.", hint="Remove the duplicate."
                )
            seen.add(ind)
        object.__setattr__(self, "indicators", indicators)

    @classmethod
    def of(cls, *indicators: Indicator) -> FeatureSpec:
        return cls(tuple(indicators))

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-safe form (what is saved with a model)."""
        return {"schema": SCHEMA, "indicators": [ind.to_dict() for ind in self.indicators]}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, ASCII; the input of :attr:`hash`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Rebuild a spec from :meth:`to_dict` output (or hand-written config)."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"Feature spec must be a mapping, got {type(data).__name__}.",
                hint="Use FeatureSpec.to_dict() output, e.g. "
                '{"schema": "' + SCHEMA + '", "indicators": [{"kind": "rsi", "length": 14}]}.',
            )
        unknown = sorted(set(data) - {"schema", "indicators"})
        if unknown:
            raise ConfigError(
                f"Feature spec: unknown key(s) {', '.join(unknown)}.",
                hint="A spec has 'schema' and 'indicators'.",
            )
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise ConfigError(
                f"Feature spec schema {schema!r} is not supported by this version "
                f"(expected {SCHEMA!r}).",
                hint="Retrain the model with this version of mptrain, or install the version "
                "that trained it.",
            )
        indicators = data.get("indicators")
        if isinstance(indicators, str | bytes) or not isinstance(indicators, list | tuple):
            raise ConfigError(
                "Feature spec: 'indicators' must be a list of indicator entries.",
                hint='For example [{"kind": "rsi", "length": 14}].',
            )
        return cls(tuple(Indicator.from_dict(item) for item in indicators))

    @cached_property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON; equal specs hash equal in every process."""
        return hashlib.sha256(self.to_json().encode("ascii")).hexdigest()


def default_spec() -> FeatureSpec:
    """The model's default feature set (the seed's 20+ technical features)."""
    make = Indicator.create
    return FeatureSpec.of(
        make("rsi", length=14),
        make("macd", fast=12, slow=26, signal=9),
        make("stoch", k=14, smooth_k=3, d=3),
        make("roc", length=1),
        make("roc", length=5),
        make("roc", length=10),
        make("atr", length=14),
        make("bbands", length=20, mult=2.0),
        make("stddev", length=20),
        make("obv", length=20),
        make("vwap", length=20),
        make("volume_sma", length=20),
        make("adx", length=14),
        make("sma", length=10),
        make("sma", length=20),
        make("sma", length=50),
        make("ema", length=12),
        make("ema", length=26),
        make("ema", length=50),
    )


def check_spec(expected_hash: str, spec: FeatureSpec) -> None:
    """Refuse to feed a model features built with another spec than the one it learned on.

    Raises :class:`ConfigError` naming both hashes and how to get matching features.
    """
    if spec.hash == expected_hash:
        return
    raise ConfigError(
        f"Feature spec mismatch: the model was trained on features with spec hash "
        f"{expected_hash}, but these features were built with spec hash {spec.hash}.",
        hint="Build the features with the spec saved in the model's manifest "
        "(FeatureSpec.from_dict(manifest feature_spec)), or retrain the model on this spec.",
    )
