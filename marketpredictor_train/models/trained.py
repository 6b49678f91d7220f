"""A fitted model together with its manifest: what it needs to predict on new data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as _date
from typing import TYPE_CHECKING, Any

from marketpredictor_train.errors import ModelFileError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from marketpredictor_train.features import FeatureSpec
    from marketpredictor_train.models.base import ModelType
    from marketpredictor_train.store import ModelFile


@dataclass(frozen=True)
class TrainedModel:
    model: ModelType
    manifest: dict[str, Any]

    @classmethod
    def from_model_file(
        cls, model_file: ModelFile, *, device: str = "cpu", source: str | None = None
    ) -> TrainedModel:
        """The model of a verified file, its manifest checked field by field and its
        payload checked before anything predicts with it (see models/isolation.py);
        :class:`ModelFileError` naming ``source`` (the file) and what is wrong."""
        where = source or str(model_file.manifest.get("version") or "the model file")
        try:
            return cls._load(model_file, device=device)
        except ModelFileError as exc:
            raise ModelFileError(
                f"{where}: {exc.message}",
                hint=exc.hint or "Do not use it; roll back to another version or retrain.",
            ) from exc

    @classmethod
    def _load(cls, model_file: ModelFile, *, device: str) -> TrainedModel:
        from marketpredictor_train.errors import ConfigError
        from marketpredictor_train.models.isolation import probe_payload
        from marketpredictor_train.models.registry import get_model_type

        manifest = model_file.manifest
        name = manifest.get("model_type")
        if not isinstance(name, str):
            raise ModelFileError("its manifest lacks the model type (model_type)")
        try:
            model_type = get_model_type(name)
        except ConfigError as exc:
            raise ModelFileError(
                f"its manifest names an unknown model type: {exc.message}"
            ) from exc
        params = _checked_manifest(manifest, model_type.reserved_params)
        n_features = len(manifest["feature_columns"])
        payload = model_file.payload
        if model_type.isolate_loading and not model_file.verified:
            # what the library wrote back in the child, never the file's own bytes
            payload = probe_payload(name, payload, params, n_features=n_features)
        try:
            model = model_type.from_bytes(payload, params, device=device)
        except (TypeError, ValueError) as exc:  # parameters the estimator does not take
            raise ModelFileError(f"its parameters are not valid for {name}: {exc}") from exc
        if not model_type.isolate_loading:
            model.check_structure(n_features)
        return cls(model=model, manifest=manifest)

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    @property
    def spec(self) -> FeatureSpec:
        from marketpredictor_train.features import FeatureSpec

        return FeatureSpec.from_dict(self.manifest["feature_spec"])

    @property
    def feature_columns(self) -> list[str]:
        return list(self.manifest["feature_columns"])

    @property
    def horizon(self) -> int:
        return int(self.manifest.get("label", {}).get("horizon", 1))

    def predict_proba(self, features: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
        """P(up) for each row of ``features``, which must have been built with ``spec``;
        a model is refused on any spec other than the one it was trained on."""
        from marketpredictor_train.features import check_spec

        check_spec(self.manifest["feature_spec_hash"], spec)
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise ModelFileError(
                f"Model {self.version} needs feature columns that are missing: "
                + ", ".join(missing[:10]),
                hint="Build the features with the model's own feature spec.",
            )
        proba = self.model.predict_proba(features.select(self.feature_columns).to_numpy())
        calibration = self.manifest.get("calibration")
        if calibration:
            from marketpredictor_train.models.calibration import Calibrator

            proba = Calibrator.from_dict(calibration).apply(proba)
        return proba


def _checked_manifest(manifest: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    """The model's parameters, once every manifest field a prediction reads is checked."""
    params = _checked_params(manifest.get("params", {}), reserved)
    _check_features(manifest)
    _check_label(manifest.get("label", {}))
    _check_window(manifest.get("data_window", {}))
    if manifest.get("calibration") is not None:
        from marketpredictor_train.models.calibration import Calibrator

        Calibrator.from_dict(manifest["calibration"])
    return params


def _checked_params(params: Any, reserved: frozenset[str]) -> dict[str, Any]:
    """``params``: a mapping that names none of the type's fixed arguments."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ModelFileError(f"its params are not a mapping of names to values ({params!r:.80})")
    clashes = sorted(reserved & set(params))
    if clashes:
        raise ModelFileError(
            f"its params set {', '.join(clashes)}, which the model type fixes itself"
        )
    return params


def _check_features(manifest: dict[str, Any]) -> None:
    """``feature_columns`` a non-empty list of distinct names; a spec matching its hash."""
    from marketpredictor_train.errors import ConfigError
    from marketpredictor_train.features import FeatureSpec

    columns = manifest.get("feature_columns")
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) and c for c in columns)
        or len(set(columns)) != len(columns)
    ):
        raise ModelFileError("its manifest lacks a list of distinct feature_columns")
    document = manifest.get("feature_spec")
    if not isinstance(document, dict):
        raise ModelFileError("its manifest lacks a feature_spec mapping")
    try:
        spec = FeatureSpec.from_dict(document)
    except (ConfigError, TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"its feature_spec is malformed: {exc}") from exc
    if spec.hash != manifest.get("feature_spec_hash"):
        raise ModelFileError("its feature_spec does not match its feature_spec_hash")


def _check_label(label: Any) -> None:
    """An integer horizon of at least 1 and a dead band in [0, 1)."""
    if not isinstance(label, dict):
        raise ModelFileError("its label is not a mapping")
    horizon = label.get("horizon", 1)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 10_000:
        raise ModelFileError(f"its label horizon {horizon!r} is not a positive integer")
    band = label.get("dead_band", 0.0)
    if isinstance(band, bool) or not isinstance(band, int | float) or not 0 <= band < 1:
        raise ModelFileError(f"its label dead_band {band!r} is not a number in [0, 1)")


def _check_window(window: Any) -> None:
    """A mapping whose ``*_start`` and ``*_end`` entries are ISO dates."""
    if window is None:
        return
    if not isinstance(window, dict):
        raise ModelFileError("its data_window is not a mapping")
    for key, value in window.items():
        if key.endswith(("_start", "_end")) and value is not None:
            try:
                _date.fromisoformat(str(value))
            except ValueError as exc:
                raise ModelFileError(f"its data_window {key} {value!r} is not a date") from exc
