"""Training and evaluation of the resolution-time model on daily 311 files, split by date."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date as Date
from datetime import timedelta

import numpy as np

from eta311.model.dataset import DAY_FILE_SUFFIX, Columns, decode_day, medians_by_type, resolved, to_columns
from eta311.model.estimator import QUANTILES, ETAModel, log_offsets
from eta311.model.features import FEATURE_NAMES, FeatureEncoder
from eta311.storage import Store

log = logging.getLogger(__name__)

# A day pulled before most of its requests were closed keeps only the quick ones: its closed
# subset is biased short. Below this share of closed requests a day is too young to learn from.
MIN_CLOSED_SHARE = 0.85
RECENT_DAYS = 30
SEED = 0
# Depth 8 keeps the compiled walk to eight steps; 100 rounds of 63 leaves fit as well as 250 of 31
# (held-out MAE 25.9 against 26.0 h) at well under half the size.
BOOSTING = dict(max_iter=100, learning_rate=0.1, max_depth=8, max_leaf_nodes=63, min_samples_leaf=50, random_state=SEED)


@dataclass
class DayFile:
    day: Date
    records: list[dict]

    @property
    def closed_share(self) -> float:
        return sum("closed_date" in r for r in self.records) / max(len(self.records), 1)


def day_of(name: str) -> Date | None:
    """raw/2019-06-08.json.gz -> 2019-06-08; anything else is not a day file."""
    stem = name.rsplit("/", 1)[-1]
    if not stem.endswith(DAY_FILE_SUFFIX):
        return None
    try:
        return Date.fromisoformat(stem[: -len(DAY_FILE_SUFFIX)])
    except ValueError:
        return None


def read_days(
    store: Store, prefix: str = "", progress: Callable[[str], None] = log.info, last_days: int | None = None
) -> list[DayFile]:
    """Every YYYY-MM-DD.json.gz under prefix (only the last_days up to the newest, if given), oldest first."""
    names = sorted((d, n) for n in store.list(prefix) if (d := day_of(n)) is not None)
    if last_days is not None and names:
        first = names[-1][0] - timedelta(days=last_days - 1)
        names = [(d, n) for d, n in names if d >= first]
    days = []
    for i, (day, name) in enumerate(names, 1):
        days.append(DayFile(day, decode_day(store.get(name))))
        progress(f"read {i}/{len(names)} {name}: {len(days[-1].records)} records")
    return days


def mature_days(days: Iterable[DayFile]) -> tuple[list[DayFile], list[str]]:
    kept, skipped = [], []
    for d in days:
        (kept if d.closed_share >= MIN_CLOSED_SHARE else skipped).append(d)
    return kept, [f"{d.day} ({d.closed_share:.0%} closed)" for d in skipped]


def split_by_date(columns: Columns, holdout_days: int) -> tuple[Columns, Columns]:
    """Hold out the latest days by calendar date, never random rows: tomorrow is what we predict."""
    days = columns.created.astype("datetime64[D]")
    cut = days.max() - np.timedelta64(holdout_days - 1, "D")
    return columns.subset(days < cut), columns.subset(days >= cut)


def recent_subset(columns: Columns, end: np.datetime64, window_days: int = RECENT_DAYS) -> Columns:
    days = columns.created.astype("datetime64[D]")
    return columns.subset((days <= end) & (days > end - np.timedelta64(window_days, "D")))


def rolling_recent_log_medians(columns: Columns, window_days: int = RECENT_DAYS) -> np.ndarray:
    """For each row, its type's log1p median over the window before its own day (no look-ahead)."""
    days = columns.created.astype("datetime64[D]")
    types = np.asarray(columns.complaint_types, dtype=object)
    out = np.full(len(columns), np.nan)
    for day in np.unique(days):
        window = (days < day) & (days >= day - np.timedelta64(window_days, "D"))
        if not window.any():
            continue
        medians = medians_by_type(list(types[window]), columns.hours[window])
        rows = np.flatnonzero(days == day)
        out[rows] = [np.log1p(medians[t]) if t in medians else np.nan for t in types[rows]]
    return out


def fit_model(train: Columns) -> ETAModel:
    """Fit q10/q50/q90 regressors on the log-hours offset from each row's recent type median."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    train_end = train.created.astype("datetime64[D]").max()
    overall = medians_by_type(train.complaint_types, train.hours)
    latest = recent_subset(train, train_end)
    recent = medians_by_type(latest.complaint_types, latest.hours)
    types, counts = np.unique(np.asarray(train.complaint_types, dtype=object), return_counts=True)
    stats = {
        str(t): (float(np.log1p(overall[t])), float(np.log1p(recent[t])) if t in recent else np.nan, float(np.log1p(c)))
        for t, c in zip(types, counts)
    }
    encoder = FeatureEncoder(stats)
    features = encoder.transform(train.complaint_types, train.latitudes, train.longitudes, train.created)
    features[:, 1] = rolling_recent_log_medians(train)
    global_log_median = float(np.log1p(np.median(train.hours)))
    target = np.log1p(train.hours) - log_offsets(features, global_log_median)
    estimators = []
    for q in QUANTILES:
        log.info("fitting the %d%% quantile on %d rows x %d features", q * 100, *features.shape)
        estimators.append(HistGradientBoostingRegressor(loss="quantile", quantile=q, **BOOSTING).fit(features, target))
    return ETAModel(encoder, estimators, global_log_median)


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return round(float(np.mean(np.abs(predicted - actual))), 3)


def baseline_predictions(medians: dict[str, float], types: list[str], fallback: float) -> np.ndarray:
    return np.array([medians.get(t, fallback) for t in types])


def evaluate(model: ETAModel, train: Columns, test: Columns, min_rows_per_type: int = 30) -> tuple[dict, np.ndarray]:
    """MAE of the model and both median baselines on the same held-out rows, and the predictions."""
    features = model.encoder.transform(test.complaint_types, test.latitudes, test.longitudes, test.created)
    low, predicted, high = model.predict_matrix(features).T
    train_end = train.created.astype("datetime64[D]").max()
    fallback = float(np.median(train.hours))
    latest = recent_subset(train, train_end)
    baselines = {
        "all_training_days": baseline_predictions(
            medians_by_type(train.complaint_types, train.hours), test.complaint_types, fallback
        ),
        f"latest_{RECENT_DAYS}_days": baseline_predictions(
            medians_by_type(latest.complaint_types, latest.hours), test.complaint_types, fallback
        ),
    }
    actual = test.hours
    types = np.asarray(test.complaint_types, dtype=object)
    per_type = {}
    names, counts = np.unique(types, return_counts=True)
    for name, count in sorted(zip(names, counts), key=lambda p: -p[1]):
        if count < min_rows_per_type:
            continue
        rows = types == name
        per_type[str(name)] = {
            "rows": int(count),
            "model_mae": mae(predicted[rows], actual[rows]),
            **{f"median_{k}_mae": mae(v[rows], actual[rows]) for k, v in baselines.items()},
        }
    return {
        "rows": int(len(test)),
        "model_mae": mae(predicted, actual),
        **{f"median_{k}_mae": mae(v, actual) for k, v in baselines.items()},
        "interval_coverage_10_90": round(float(np.mean((actual >= low) & (actual <= high))), 3),
        "median_absolute_error": round(float(np.median(np.abs(predicted - actual))), 3),
        "per_type": per_type,
    }, predicted


def library_versions() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__}


MEDIANS_WINDOW_DAYS = 90


def latest_medians(columns: Columns, window_days: int = MEDIANS_WINDOW_DAYS) -> dict[str, float]:
    """The medians the service answers with: resolved requests of the latest window_days."""
    latest = recent_subset(columns, columns.created.astype("datetime64[D]").max(), window_days)
    return medians_by_type(latest.complaint_types, latest.hours)


@dataclass
class TrainingRun:
    model: ETAModel
    card: dict
    medians: dict[str, float]
    predicted: np.ndarray
    actual: np.ndarray
    train: Columns
    test: Columns


def train_on_days(days: list[DayFile], holdout_days: int = 30) -> TrainingRun:
    """Clean, split by date, fit, evaluate: everything a model card says comes from here."""
    usable, skipped = mature_days(days)
    if not usable:
        raise ValueError("no day has enough closed requests to learn from")
    raw = to_columns(r for d in usable for r in d.records)
    columns = resolved(raw)
    train, test = split_by_date(columns, holdout_days)
    if len(train) == 0 or len(test) == 0:
        raise ValueError("need resolved requests both before and inside the held-out window")
    model = fit_model(train)
    metrics, predicted = evaluate(model, train, test)
    day = lambda c, f: str(f(c.created.astype("datetime64[D]")))  # noqa: E731
    card = {
        "model": "HistGradientBoostingRegressor x3 (quantiles 0.1/0.5/0.9) on log hours, offset by the recent type median",
        "training_window": {"first_day": day(train, np.min), "last_day": day(train, np.max)},
        "holdout_window": {"first_day": day(test, np.min), "last_day": day(test, np.max), "days": holdout_days},
        "rows": {
            "records_read": sum(len(d.records) for d in days),
            "train": len(train),
            "holdout": len(test),
            "dropped": columns.dropped,
            "skipped_days_too_few_closed": skipped,
        },
        "metrics": metrics,
        "features": list(FEATURE_NAMES),
        "quantiles": list(QUANTILES),
        "hyperparameters": BOOSTING,
        "libraries": library_versions(),
        "complaint_types": sorted(model.encoder.type_stats),
    }
    return TrainingRun(model, card, latest_medians(columns), predicted, test.hours, train, test)
