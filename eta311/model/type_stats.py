"""Per-type recent statistics, censoring-aware (Kaplan-Meier), as known at a given time: the model's fresh inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from eta311.model.survival import km_quantiles
from eta311.storage import content_version

TYPE_STATS = "type_stats.json"
STATS_FORMAT = 2
# Recency weight of the model's starting point: a request counts 0.5 ** (age in days / this). Chosen
# without the held-out days or the card's backtest weeks, on the three mature weeks before those
# (scripts/compare_methods.py, part 2): the longest half-life within one standard error (over days)
# of the best there, which was 7 days alone. A handful of April days decided it: a weak choice, said so.
HALF_LIFE_DAYS = 7
# (name, window in days, quantile or None for the count, recency half-life in days or None):
# each a log1p of hours (or of a count).
STAT_SPECS = (
    ("log_km_median_90d_recent", 90, 0.5, HALF_LIFE_DAYS),
    ("log_km_median_90d", 90, 0.5, None),
    ("log_km_median_30d", 30, 0.5, None),
    ("log_km_median_7d", 7, 0.5, None),
    ("log_km_q25_30d", 30, 0.25, None),
    ("log_km_q75_30d", 30, 0.75, None),
    ("log_count_30d", 30, None, None),
)
STAT_NAMES = tuple(spec[0] for spec in STAT_SPECS)
# Requests younger than this many days at publication are left out of every statistic: a cohort seen
# for less than its first day or two tells little beyond whether that one day was odd. Chosen like the
# half-life, on the mature weeks (scripts/compare_methods.py, part 4).
MATURITY_LAG_DAYS = 0
WINDOW_DAYS = max(spec[1] for spec in STAT_SPECS)
_HOUR = np.timedelta64(3_600_000, "ms")


def as_known_at(
    created: np.ndarray, hours: np.ndarray, pulled: np.ndarray, as_of: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """(time, closed) of each request as someone at as_of (or at its own pull, if earlier) saw it."""
    seen_at = np.minimum(pulled, as_of)
    follow_up = (seen_at - created) / _HOUR
    closed = ~np.isnan(hours) & (hours <= follow_up)
    return np.where(closed, hours, np.maximum(follow_up, 0.0)), closed


def compute(
    complaint_types: Sequence[str],
    created: np.ndarray,
    hours: np.ndarray,
    pulled: np.ndarray,
    as_of: np.datetime64,
    specs: Sequence[tuple] = STAT_SPECS,
    lag_days: int = MATURITY_LAG_DAYS,
) -> dict[str, tuple[float, ...]]:
    """Statistics per type from the requests created in each window before as_of (and at least
    lag_days before it), as known then."""
    types = np.asarray(complaint_types, dtype=object)
    newest = as_of - np.timedelta64(lag_days, "D")
    inside = (created < newest) & (created >= as_of - np.timedelta64(max(spec[1] for spec in specs), "D"))
    if not inside.any():
        return {}
    time, closed = as_known_at(created[inside], hours[inside], pulled[inside], as_of)
    age_days = (as_of - created[inside]) / np.timedelta64(1, "D")
    types = types[inside]
    order = np.argsort(types, kind="stable")
    names, starts = np.unique(types[order], return_index=True)
    stats = {}
    for name, rows in zip(names, np.split(order, starts[1:])):
        values = []
        for _, window, quantile, half_life in specs:
            recent = rows[age_days[rows] <= window]
            if quantile is None:
                values.append(float(np.log1p(len(recent))))
            elif len(recent):
                weights = None if half_life is None else 0.5 ** (age_days[recent] / half_life)
                values.append(float(np.log1p(km_quantiles(time[recent], closed[recent], [quantile], weights)[0])))
            else:
                values.append(math.nan)
        stats[str(name)] = tuple(values)
    return stats


def rolling(
    complaint_types: Sequence[str],
    created: np.ndarray,
    hours: np.ndarray,
    pulled: np.ndarray,
    specs: Sequence[tuple] = STAT_SPECS,
    lag_days: int = MATURITY_LAG_DAYS,
) -> np.ndarray:
    """Each request's type statistics as published at the start of its own day (no look-ahead)."""
    days = created.astype("datetime64[D]")
    out = np.full((len(created), len(specs)), np.nan)
    types = np.asarray(complaint_types, dtype=object)
    for day in np.unique(days[~np.isnat(days)]):
        stats = compute(complaint_types, created, hours, pulled, day.astype("datetime64[ms]"), specs, lag_days)
        rows = np.flatnonzero(days == day)
        missing = (math.nan,) * len(specs)
        out[rows] = [stats.get(t, missing) for t in types[rows]]
    return out


def to_bytes(stats: Mapping[str, Sequence[float]], as_of: str) -> bytes:
    """type_stats.json: the statistic names, when they were known, and per type its values (null for none)."""
    body = {
        "format": STATS_FORMAT,
        "as_of": as_of,
        "names": list(STAT_NAMES),
        "types": {t: [None if math.isnan(v) else round(v, 6) for v in values] for t, values in sorted(stats.items())},
    }
    return (json.dumps(body, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def version(blob: bytes) -> str:
    return "stats-" + content_version(blob)[:12]


def parse(blob: bytes) -> dict[str, tuple[float, ...]]:
    """The statistics of a type_stats.json, or ValueError if it is not one this code can use."""
    body = json.loads(blob)
    if not isinstance(body, dict) or body.get("format") != STATS_FORMAT or body.get("names") != list(STAT_NAMES):
        raise ValueError("type_stats.json is not in this service's format")
    types = body.get("types")
    if not isinstance(types, dict) or not types:
        raise ValueError("type_stats.json holds no complaint type")
    stats = {}
    for name, values in types.items():
        if not isinstance(values, list) or len(values) != len(STAT_NAMES):
            raise ValueError(f"type_stats.json has a bad row for {name!r}")
        row = tuple(math.nan if v is None else v for v in values)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise ValueError(f"type_stats.json has a non-number for {name!r}")
        if any(math.isinf(v) or v < 0 for v in row):
            raise ValueError(f"type_stats.json has an out-of-range value for {name!r}")
        stats[str(name).lower()] = tuple(float(v) for v in row)
    return stats
