"""The resolution-time model: feature encoder, median regressor, calibrated interval and their compiled form."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from eta311.model.features import COLUMN, FEATURE_NAMES, FeatureEncoder, parse_timestamps
from eta311.model.forest import CompiledForest

# One regressor, of the median: the interval is the median widened by a calibrated margin in log
# hours. Separate 10% and 90% regressors were tried: their interval, calibrated the same way, came
# out wider on average (scripts/compare_methods.py), at three times the trees to walk per answer.
QUANTILE = 0.5
BUNDLE_FORMAT = 3
# Only for a model unpickled with its scikit-learn estimators (training, evaluation): above this
# many rows their threaded C loop is used; the service loads the numpy bundle and always walks the
# compiled trees (31-48k rows/s on 10,000 rows, scripts/bench_model.py).
COMPILED_MAX_ROWS = 64


OFFSET_STATS = ("log_km_median_90d_recent", "log_km_median_90d", "log_km_median_30d")


def log_offsets(features: np.ndarray, global_log_median: float) -> np.ndarray:
    """Each row's starting point: its type's recency-weighted 90-day Kaplan-Meier log median, else
    the first of the plain 90-day and 30-day ones it has, else everyone's.

    The long window first: a 30-day window ends in days whose slow requests are still open, and a
    median beyond every follow-up is only a lower bound (held-out MAE-hinge 110 h against 89 h).
    The recency weight follows the drift of each type's level without dropping the older requests,
    which alone tell how long the slow ones take.
    """
    offsets = np.full(len(features), global_log_median)
    for name in reversed(OFFSET_STATS):
        column = features[:, COLUMN[name]]
        offsets = np.where(np.isnan(column), offsets, column)
    return offsets


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
        interval_widening: float = 0.0,
    ):
        self.encoder = encoder
        # The median regressor, fitted on log1p(hours) - offset; empty when loaded from a serving bundle.
        self.estimators = list(estimators)
        self.global_log_median = global_log_median
        # Taken off and added to the median in log hours for the interval's ends, chosen by
        # conformal calibration on held-out requests (training.calibrate).
        self.interval_widening = interval_widening
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
            "type_stats": np.array([self.encoder.type_stats[n] for n in names], dtype=np.float64).reshape(
                len(names), -1
            ),
            "global_log_median": np.array(self.global_log_median),
            "interval_widening": np.array(self.interval_widening),
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
            widening = float(bundle["interval_widening"])
            return cls(FeatureEncoder(stats), [], float(bundle["global_log_median"]), compiled, widening)

    def offsets(self, features: np.ndarray) -> np.ndarray:
        return log_offsets(features, self.global_log_median)

    def predict_matrix(self, features: np.ndarray, use_sklearn: bool | None = None) -> np.ndarray:
        """Hours for each row as (low, median, high) of the calibrated interval, shape (rows, 3)."""
        if use_sklearn is None:
            use_sklearn = bool(self.estimators) and len(features) > COMPILED_MAX_ROWS
        if use_sklearn:
            log_median = self.estimators[0].predict(features)
        elif len(features) == 1:
            return self._predict_row(features)
        else:
            log_median = self.compiled.predict(features)[:, 0]
        log_median = log_median + self.offsets(features)
        margin = abs(self.interval_widening)
        return np.maximum(np.expm1(log_median[:, None] + np.array([-margin, 0.0, margin])), 0.0)

    def _predict_row(self, features: np.ndarray) -> np.ndarray:
        """predict_matrix's steps for one row (a request), in place on one short array: the 2-D
        steps cost more in numpy's per-call overhead than the forest itself. Same bits as a batch."""
        row = features[0]
        log_median = self.compiled.predict_row(row)[0] + self._row_offset(row.tolist())
        margin = abs(self.interval_widening)
        hours = np.array([[log_median - margin, log_median, log_median + margin]])
        np.expm1(hours, out=hours)
        return np.maximum(hours, 0.0, out=hours)

    def _row_offset(self, values: list[float]) -> float:
        """log_offsets for one row, on Python floats: the same value picked, without ten numpy calls."""
        offset = self.global_log_median
        for name in reversed(OFFSET_STATS):
            value = values[COLUMN[name]]
            if value == value:  # not NaN
                offset = value
        return offset

    def features(
        self,
        complaint_types: Sequence[str],
        latitudes,
        longitudes,
        dates: Sequence[str],
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> np.ndarray:
        """The feature matrix; stats are the latest published type statistics, else the model's own."""
        return self.encoder.transform(
            complaint_types,
            np.asarray(latitudes, dtype=np.float64),
            np.asarray(longitudes, dtype=np.float64),
            parse_timestamps(dates),
            stats,
        )

    def fallbacks(
        self,
        complaint_type: str,
        lat: float | None,
        lon: float | None,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> list[str]:
        flags = []
        if not self.encoder.knows(complaint_type, stats):
            flags.append("unknown_complaint_type")
        if lat is None or lon is None:
            flags.append("missing_coordinates")
        return flags
