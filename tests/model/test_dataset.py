"""Targets as true total hours, the drop rule, medians and day files."""

import numpy as np

from eta311.model.dataset import decode_day, encode_day, medians_by_type, resolved, to_columns


def record(created, closed=None, kind="Rodent", **extra):
    out = {"created_date": created, "complaint_type": kind, **extra}
    if closed:
        out["closed_date"] = closed
    return out


def test_hours_count_whole_days():
    # timedelta.seconds would give 1 hour here; the target is 49 hours.
    cols = to_columns([record("2019-06-01T10:00:00.000", "2019-06-03T11:00:00.000")])
    assert cols.hours[0] == 49.0


def test_drop_rule_counts_each_reason():
    cols = resolved(
        to_columns(
            [
                record("2019-06-01T10:00:00.000", "2019-06-01T12:30:00.000"),
                record("2019-06-01T10:00:00.000"),  # still open
                record("2019-06-01T10:00:00.000", "2019-05-01T10:00:00.000"),  # closed before created
                record("2017-06-01T10:00:00.000", "2019-06-01T10:00:00.000"),  # two years open
            ]
        )
    )
    assert list(cols.hours) == [2.5]
    assert cols.dropped == {"still_open": 1, "closed_before_created": 1, "open_over_a_year": 1, "bad_created_date": 0}


def test_strings_and_missing_coordinates_as_socrata_sends_them():
    cols = to_columns(
        [
            record("2019-06-01T10:00:00.000", latitude="40.70334089582802", longitude="-73.8979322700962"),
            record("2019-06-01T10:00:00.000"),
        ]
    )
    assert cols.latitudes[0] == 40.70334089582802 and np.isnan(cols.latitudes[1])


def test_medians_by_type_two_decimals():
    medians = medians_by_type(["a", "b", "a", "a"], np.array([1.0, 5.123456, 2.0, 10.0]))
    assert medians == {"a": 2.0, "b": 5.12}


def test_day_files_round_trip_byte_for_byte(fixture_days):
    records = fixture_days[0].records
    blob = encode_day(records)
    assert decode_day(blob) == records
    assert encode_day(decode_day(blob)) == blob
