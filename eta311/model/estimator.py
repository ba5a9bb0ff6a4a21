"""The resolution-time model: feature encoder, quantile regressors and their compiled form."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eta311.model.features import FEATURE_NAMES, FeatureEncoder, parse_timestamps
from eta311.model.forest import CompiledForest

QUANTILES = (0.1, 0.5, 0.9)
BUNDLE_FORMAT = 1
# Only for a model unpickled with its scikit-learn estimators (training, evaluation): above this
# many rows their threaded C loop is used; the service loads the numpy bundle and always walks the
# compiled trees (31-48k rows/s on 10,000 rows, scripts/bench_model.py).
COMPILED_MAX_ROWS = 64


def log_offsets(features: np.ndarray, global_log_median: float) -> np.ndarray:
    """Each row's starting point: its type's recent log median, else all-time, else everyone's."""
    recent, overall = features[:, 1], features[:, 0]
    return np.where(np.isnan(recent), np.where(np.isnan(overall), global_log_median, overall), recent)


@dataclass
class Estimate:
    hours: float
    low: float
    high: float
    fallbacks: list[str] = field(default_factory=list)


class ETAModel:
    """Predicts hours to resolution as a log-space offset from the type's recent median.

    The offset carries the drift of 311 resolution times (the latest medians are the strongest
    baseline); the trees learn how location and time move a request away from it.
    """

    def __init__(
        self,
        encoder: FeatureEncoder,
        estimators: Sequence[object],
        global_log_median: float,
        compiled: CompiledForest | None = None,
    ):
        self.encoder = encoder
        # q10, q50, q90, fitted on log1p(hours) - offset; empty when loaded from a serving bundle
        self.estimators = list(estimators)
        self.global_log_median = global_log_median
        self.compiled = compiled or CompiledForest.from_estimators(self.estimators, len(FEATURE_NAMES))

    def __getstate__(self) -> dict:
        # The compiled arrays are rebuilt on load, so the artifact only holds what sklearn fitted.
        return {k: v for k, v in self.__dict__.items() if k != "compiled"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.compiled = CompiledForest.from_estimators(self.estimators, len(FEATURE_NAMES))

    def to_bundle(self) -> bytes:
        """The serving form: plain numpy arrays (no pickle, no scikit-learn needed to load or run)."""
        names = sorted(self.encoder.type_stats)
        arrays = {
            **self.compiled.to_arrays(),
            "depth": np.array(self.compiled.depth),
            "type_names": np.array(names, dtype=np.str_),
            "type_stats": np.array([self.encoder.type_stats[n] for n in names], dtype=np.float64).reshape(-1, 3),
            "global_log_median": np.array(self.global_log_median),
            "feature_names": np.array(FEATURE_NAMES, dtype=np.str_),
            "bundle_format": np.array(BUNDLE_FORMAT),
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bundle(cls, blob: bytes) -> ETAModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as bundle:
            if int(bundle["bundle_format"]) != BUNDLE_FORMAT:
                raise ValueError(
                    f"serving bundle format {int(bundle['bundle_format'])}, this service reads {BUNDLE_FORMAT}"
                )
            if tuple(bundle["feature_names"]) != FEATURE_NAMES:
                raise ValueError("serving bundle was built for other features")
            stats = {str(n): tuple(map(float, row)) for n, row in zip(bundle["type_names"], bundle["type_stats"])}
            compiled = CompiledForest({name: bundle[name] for name in CompiledForest.ARRAYS}, int(bundle["depth"]))
            return cls(FeatureEncoder(stats), [], float(bundle["global_log_median"]), compiled)

    def offsets(self, features: np.ndarray) -> np.ndarray:
        return log_offsets(features, self.global_log_median)

    def predict_matrix(self, features: np.ndarray, use_sklearn: bool | None = None) -> np.ndarray:
        """Hours for each row and quantile, shape (rows, 3), monotone across quantiles."""
        if use_sklearn is None:
            use_sklearn = bool(self.estimators) and len(features) > COMPILED_MAX_ROWS
        if use_sklearn:
            raw = np.column_stack([e.predict(features) for e in self.estimators])
        else:
            raw = self.compiled.predict(features)
        hours = np.expm1(raw + self.offsets(features)[:, None])
        return np.maximum(np.sort(hours, axis=1), 0.0)  # quantile fits are independent; never cross

    def features(self, complaint_types: Sequence[str], latitudes, longitudes, dates: Sequence[str]) -> np.ndarray:
        return self.encoder.transform(
            complaint_types,
            np.asarray(latitudes, dtype=np.float64),
            np.asarray(longitudes, dtype=np.float64),
            parse_timestamps(dates),
        )

    def estimate(self, complaint_type: str, lat: float | None, lon: float | None, date: str) -> Estimate:
        """One request's estimate, with the fallbacks it needed named."""
        lat_value = np.nan if lat is None else lat
        lon_value = np.nan if lon is None else lon
        row = self.features([complaint_type], [lat_value], [lon_value], [date])
        low, mid, high = self.predict_matrix(row)[0]
        return Estimate(
            round(float(mid), 2), round(float(low), 2), round(float(high), 2), self.fallbacks(complaint_type, lat, lon)
        )

    def fallbacks(self, complaint_type: str, lat: float | None, lon: float | None) -> list[str]:
        flags = []
        if not self.encoder.knows(complaint_type):
            flags.append("unknown_complaint_type")
        if lat is None or lon is None:
            flags.append("missing_coordinates")
        return flags
