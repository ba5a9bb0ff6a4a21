"""The numpy feature transformer against an independent datetime computation, on real records."""

from datetime import datetime

import numpy as np
import pytest

from eta311.model.complaints import canonical_type
from eta311.model.features import (
    COLUMN,
    FEATURE_NAMES,
    FeatureEncoder,
    date_features,
    is_valid_timestamp,
    parse_timestamps,
)
from eta311.model.type_stats import STAT_NAMES

EDGE_CASES = [
    "2019-06-08T00:00:00.000",  # midnight
    "2019-06-08 00:00:09",  # the query string form
    "2020-02-29T12:30:00.000",  # leap day
    "2020-12-31T23:59:59.999",  # last instant of a leap year: day 366
    "2019-12-31T23:59:59.000",  # year end: day 365
    "2019-01-01T00:00:00.000",  # day 1
    "2019-03-10T02:30:00.000",  # a wall-clock time that DST skips: floating local time keeps it
    "2019-06-08",  # date only
]


def by_datetime(text: str) -> tuple[float, float, float]:
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    return moment.weekday(), moment.timetuple().tm_yday, seconds


def test_date_features_match_datetime_on_real_records(fixture_days):
    stamps = [r["created_date"] for d in fixture_days for r in d.records] + EDGE_CASES
    ours = date_features(parse_timestamps(stamps))
    expected = np.array([by_datetime(s) for s in stamps])
    assert np.allclose(ours, expected, atol=1e-6)


def test_year_end_and_leap_day_values():
    ours = date_features(parse_timestamps(["2020-12-31T23:59:59.999", "2020-02-29T00:00:00"]))
    assert ours[0, 1] == 366 and ours[1, 1] == 60
    assert ours[0, 2] == pytest.approx(86399.999)


@pytest.mark.parametrize(
    "text", ["2019-06-08T25:00:00", "2019-02-29", "yesterday", "2019-6-8", "", "2019-06-08T00:00:00Z"]
)
def test_bad_timestamps_become_nat_and_are_invalid(text):
    assert np.isnat(parse_timestamps([text])[0])
    assert not is_valid_timestamp(text)
    assert np.isnan(date_features(parse_timestamps([text]))).all()


def test_one_bad_timestamp_does_not_spoil_its_neighbours():
    stamps = parse_timestamps(["2019-06-08T10:00:00.000", "2019-06-08T25:00:00", None])
    assert str(stamps[0]) == "2019-06-08T10:00:00.000" and np.isnat(stamps[1]) and np.isnat(stamps[2])


def test_encoder_unknown_types_and_missing_coordinates_stay_nan():
    own = {"rodent": tuple(float(k) for k in range(len(STAT_NAMES)))}
    encoder = FeatureEncoder(own)
    matrix = encoder.transform(
        ["rodent", "unheard of"],
        np.array([40.7, np.nan]),
        np.array([-73.9, np.nan]),
        parse_timestamps(["2019-06-08T00:00:09.000"] * 2),
    )
    assert matrix.shape == (2, len(FEATURE_NAMES))
    place = [COLUMN["latitude"], COLUMN["longitude"]]
    assert list(matrix[0, : len(STAT_NAMES)]) == list(own["rodent"]) and list(matrix[0, place]) == [40.7, -73.9]
    assert np.isnan(matrix[1, : len(STAT_NAMES)]).all() and np.isnan(matrix[1, place]).all()
    assert not np.isnan(matrix[:, COLUMN["day_of_week"] :]).any()


def test_published_statistics_replace_the_models_own():
    encoder = FeatureEncoder({"rodent": (1.0,) * len(STAT_NAMES)})
    fresh = {"rodent": (2.0,) * len(STAT_NAMES), "new type": (3.0,) * len(STAT_NAMES)}
    stamps = parse_timestamps(["2019-06-08T00:00:09.000"] * 2)
    matrix = encoder.transform(["rodent", "new type"], np.zeros(2), np.zeros(2), stamps, fresh)
    assert (matrix[:, COLUMN["log_km_median_90d"]] == [2.0, 3.0]).all()
    assert encoder.knows("new type", fresh) and not encoder.knows("new type")


@pytest.mark.parametrize(
    "given, expected",
    [
        ("Residential", "noise - residential"),
        ("STREET", "noise - street/sidewalk"),
        ("worship", "noise - house of worship"),
        ("other", "noise"),
        ("truck", "collection truck noise"),
        ("HEAT/HOT WATER", "heat/hot water"),
        ("  Noise -   Residential ", "noise - residential"),
    ],
)
def test_canonical_type(given, expected):
    assert canonical_type(given) == expected


def test_one_row_equals_the_same_row_in_a_batch():
    # A single request takes a plain-Python path through transform(); it must give the same floats.
    encoder = FeatureEncoder(
        {"rodent": (1.5, np.nan, 3.0, 1.0, 2.0, 4.0, 5.0), "noise": (0.5, 0.75, 9.0, 0.1, 1.0, 2.0, 3.0)}
    )
    dates = [*EDGE_CASES, "1969-12-31T23:00", "0000-03-01", "9999-12-31T23:59:59.999", "2019-02-30", None]
    stamps = parse_timestamps(dates)
    for at in range(len(dates)):
        for kind in ("rodent", "noise", "a type nobody filed"):
            for lat, lon in ((40.7, -73.9), (np.nan, np.nan)):
                alone = encoder.transform([kind], np.array([lat]), np.array([lon]), stamps[at : at + 1])
                in_batch = encoder.transform([kind] * 2, np.array([lat] * 2), np.array([lon] * 2), stamps[[at, at]])
                np.testing.assert_array_equal(alone, in_batch[:1])
                fresh = {kind: (7.0,) * len(STAT_NAMES)}  # published statistics take the same path
                alone = encoder.transform([kind], np.array([lat]), np.array([lon]), stamps[at : at + 1], fresh)
                in_batch = encoder.transform([kind] * 2, [lat] * 2, [lon] * 2, stamps[[at, at]], fresh)
                np.testing.assert_array_equal(alone, in_batch[:1])
