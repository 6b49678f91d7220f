"""A fitted model together with its manifest: what it needs to predict on new data."""

from __future__ import annotations

from dataclasses import dataclass
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
    def from_model_file(cls, model_file: ModelFile, *, device: str = "cpu") -> TrainedModel:
        from marketpredictor_train.models.registry import get_model_type

        manifest = model_file.manifest
        try:
            model_type = get_model_type(manifest["model_type"])
            model = model_type.from_bytes(
                model_file.payload, manifest.get("params") or {}, device=device
            )
        except KeyError as exc:
            raise ModelFileError(f"Model manifest lacks the field {exc}") from exc
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
