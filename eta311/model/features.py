"""The numpy-only feature transformer shared by training and serving: raw 311 values to a matrix."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence

import numpy as np

from eta311.model.type_stats import STAT_NAMES

# The type's recent statistics (type_stats.STAT_NAMES, published daily), then place and time.
PLACE_AND_TIME = ("latitude", "longitude", "day_of_week", "day_of_year", "seconds_since_midnight")
FEATURE_NAMES = STAT_NAMES + PLACE_AND_TIME
COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Socrata sends 2019-06-08T00:00:09.000; the query string form is 2019-06-08 00:00:09. [0-9], not \d
# (which also matches other scripts' digits), so the same text is a valid OpenAPI (ECMA-262) pattern.
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?$"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0 as in datetime.weekday().


def parse_timestamps(values: Sequence[str | None] | np.ndarray) -> np.ndarray:
    """Parse floating New York local timestamps to datetime64[ms]; anything unparseable becomes NaT.

    Stamps already parsed (a datetime64 array, as the service's checks leave them) pass through.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[ms]", copy=False)
    stamps = _parse_usual_shape(values)
    return stamps if stamps is not None else _parse_by_pattern(values)


# YYYY-MM-DD HH:MM:SS (or a T between): the query string's and most batches' shape, 19 ASCII characters.
_DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_BULK = 32  # below this, the dozen numpy calls of the byte check cost more than a regex each


def _parse_usual_shape(values: Sequence[str | None] | np.ndarray) -> np.ndarray | None:
    """The stamps when every value has the 19-character shape, checked as one byte array rather
    than a regex each and parsed in one call; None when any value does not, or numpy refuses one (hour 25)."""
    if len(values) < _BULK or set(map(type, values)) != {str} or set(map(len, values)) != {19}:
        return None
    joined = "".join(values)
    # ASCII only: one byte a character (a lone surrogate, which JSON can carry, has no UTF-8 bytes at all).
    if not joined.isascii():
        return None
    codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, 19)
    shaped = (
        ((codes[:, _DIGIT_AT] - ord("0")) < 10).all()
        and (codes[:, [4, 7]] == ord("-")).all()
        and (codes[:, [13, 16]] == ord(":")).all()
        and ((codes[:, 10] == ord("T")) | (codes[:, 10] == ord(" "))).all()
    )
    if not shaped:
        return None
    try:
        # From the str list: numpy 2.4's cast from a bytes array ("S19") crashes the process when
        # a date in a large array is refused.
        return np.array(values, dtype="datetime64[ms]")
    except ValueError:
        return None


def _parse_by_pattern(values: Sequence[str | None] | np.ndarray) -> np.ndarray:
    """Any mix of values: each matched against TIMESTAMP_PATTERN, anything else NaT."""
    cleaned = [v if isinstance(v, str) and _TIMESTAMP.match(v) else "NaT" for v in values]
    try:
        return np.array(cleaned, dtype="datetime64[ms]")
    except ValueError:
        # One bad value (say hour 25) fails the whole vectorised parse; sort it out row by row.
        return np.array([_parse_one(v) for v in cleaned], dtype="datetime64[ms]")


def _parse_one(value: str) -> np.datetime64:
    try:
        return np.datetime64(value, "ms")
    except ValueError:
        return np.datetime64("NaT", "ms")


def parse_timestamp(value: str) -> np.datetime64:
    """One timestamp as parse_timestamps would read it: NaT unless it has an accepted shape and names a real instant."""
    return _parse_one(value) if _TIMESTAMP.match(value) else np.datetime64("NaT", "ms")


def is_valid_timestamp(value: str) -> bool:
    """True when value has one of the accepted shapes and names a real instant."""
    return not np.isnat(parse_timestamp(value))


def date_features(stamps: np.ndarray) -> np.ndarray:
    """Day of week (Mon=0), day of year (1-366) and seconds since midnight, as float columns."""
    days = stamps.astype("datetime64[D]")
    day_of_week = (days.astype(np.int64) + _EPOCH_WEEKDAY) % 7
    year_start = stamps.astype("datetime64[Y]").astype("datetime64[D]")
    day_of_year = (days - year_start).astype(np.int64) + 1
    seconds = (stamps - days).astype("timedelta64[ms]").astype(np.int64) / 1000.0
    out = np.column_stack([day_of_week, day_of_year, seconds]).astype(np.float64)
    out[np.isnat(stamps)] = np.nan
    return out


def to_float(values: Sequence[object]) -> np.ndarray:
    """Socrata sends numbers as strings and omits nulls; anything non-numeric becomes NaN."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        try:
            out[i] = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    return out


class FeatureEncoder:
    """Turns (complaint type, lat, lon, created date) columns into the model's feature matrix."""

    def __init__(self, type_stats: Mapping[str, Sequence[float]]) -> None:
        # type -> its STAT_NAMES values as known when the model was trained: the default when no
        # fresher type_stats.json is given. A type with no statistics is all NaN for the trees.
        self.type_stats = {t: tuple(v) for t, v in type_stats.items()}

    def knows(self, complaint_type: str, stats: Mapping[str, Sequence[float]] | None = None) -> bool:
        return complaint_type in (self.type_stats if stats is None else stats)

    def transform(
        self,
        complaint_types: Sequence[str],
        latitudes: np.ndarray,
        longitudes: np.ndarray,
        stamps: np.ndarray,
        stats: Mapping[str, Sequence[float]] | None = None,
    ) -> np.ndarray:
        """Build the float64 matrix in FEATURE_NAMES order; unknown values stay NaN for the trees."""
        stats = self.type_stats if stats is None else stats
        n = len(complaint_types)
        if n == 1:
            return self._transform_row(complaint_types[0], latitudes[0], longitudes[0], stamps[0], stats)
        matrix = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
        missing = (np.nan,) * len(STAT_NAMES)
        matrix[:, : len(STAT_NAMES)] = [stats.get(t, missing) for t in complaint_types] if n else missing
        matrix[:, COLUMN["latitude"]] = latitudes
        matrix[:, COLUMN["longitude"]] = longitudes
        matrix[:, COLUMN["day_of_week"] : COLUMN["seconds_since_midnight"] + 1] = date_features(stamps)
        return matrix

    def _transform_row(
        self,
        complaint_type: str,
        latitude: float,
        longitude: float,
        stamp: np.datetime64,
        stats: Mapping[str, Sequence[float]],
    ) -> np.ndarray:
        """transform() of one row (a single request's path) in plain Python: a dozen numpy calls fewer, same floats."""
        moment = stamp.item()  # datetime for years 1-9999, None for NaT, an int outside that range
        if moment is None:
            dates: tuple[float, ...] = (np.nan, np.nan, np.nan)
        elif isinstance(moment, datetime.datetime):
            day = moment.date()
            millis = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000 + moment.microsecond // 1000
            day_of_year = day.toordinal() - datetime.date(day.year, 1, 1).toordinal() + 1
            dates = (float(day.weekday()), float(day_of_year), millis / 1000.0)
        else:
            dates = tuple(date_features(np.array([stamp], dtype="datetime64[ms]"))[0])
        known = stats.get(complaint_type, (np.nan,) * len(STAT_NAMES))
        return np.array([[*known, latitude, longitude, *dates]], dtype=np.float64)
