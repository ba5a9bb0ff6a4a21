"""Batches checked by columns and answered as bytes decide and write exactly what row-by-row checks and answer dicts give."""

from __future__ import annotations

import dataclasses
import gzip
import json
import random

import numpy as np
import pytest

from eta311.errors import ApiError
from eta311.model.features import parse_timestamps
from eta311.web.batch_reply import batch_document, batch_reply
from eta311.web.estimates import estimates, json_response, median_answer
from eta311.web.payloads import DATE_PROBLEM, _check_rows, _record_columns, check_records, prediction_request
from tests.conftest import FIXTURES


def real_rows() -> list[dict]:
    """The fixtures' 2,400 real requests as clients send them: float coordinates (none for a few), dates with a space."""
    rows = []
    for day in sorted((FIXTURES / "nyc311").glob("*.json.gz")):
        for record in json.loads(gzip.decompress(day.read_bytes())):
            row = {"complaint_type": record["complaint_type"], "date": record["created_date"][:19].replace("T", " ")}
            if "latitude" in record:
                row.update(lat=float(record["latitude"]), lon=float(record["longitude"]))
            rows.append(row)
    return rows


def reference_reply(snapshot, rows: list) -> bytes:
    """The answer as the service wrote it before: each row checked alone, one estimates() call, dicts, json_response."""
    answers: list = [None] * len(rows)
    wanted = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise ApiError("Each record must be a JSON object")
            request = prediction_request(row)
            if request.wants_model:
                wanted.append((index, request))
            else:
                answers[index] = median_answer(snapshot, request.complaint_type)
        except ApiError as error:
            answers[index] = {**error.body(), "index": index}
    if wanted:
        columns = [[getattr(r, name) for _, r in wanted] for name in ("complaint_type", "lat", "lon", "stamp")]
        try:
            found = estimates(snapshot, *columns)
        except ApiError as error:
            found = [{**error.body(), "index": index} for index, _ in wanted]
        for (index, _), estimate in zip(wanted, found):
            answers[index] = estimate
    failed = sum("model" not in answer for answer in answers)
    return json_response(batch_document(snapshot, answers, failed)).get_data()


ODD_ROWS = [
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 25:00:00"},  # no such hour
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-02-30 10:00:00"},  # no such day
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "June 8th, 2019 10:00"},
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:0٩"},  # an Arabic-Indic digit
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "1999-12-31 23:59:59"},  # before 2000
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2100-01-01 00:00:00"},
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": " 2019-06-08T10:00:00 "},  # padded, with a T
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08"},  # a day only
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08T10:00:00.000"},  # as Socrata sends
    {"complaint_type": "rodent", "lat": 41.7, "lon": -73.9, "date": "2019-06-08 10:00:00"},  # outside NYC
    {"complaint_type": "rodent", "lat": 40.7, "lon": -75.0, "date": "2019-06-08 10:00:00"},
    {"complaint_type": "rodent", "lat": 40.7, "lon": None, "date": "2019-06-08 10:00:00"},  # lat without lon
    {"complaint_type": "rodent", "lon": -73.9, "date": "2019-06-08 10:00:00"},
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9},  # coordinates need a date
    {"complaint_type": "rodent", "date": "2019-06-08 10:00:00"},  # a date without coordinates
    {"complaint_type": "Rodent"},  # the median
    {"complaint_type": "no such type"},  # no median: fails at its index
    {"complaint_type": "no such type", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"},  # the model answers
    {"complaint_type": "   ", "date": "2019-06-08 10:00:00"},
    {"complaint_type": "x" * 121, "date": "2019-06-08 10:00:00"},
    {"complaint_type": "HEAT/HOT  WATER ", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"},  # folded
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"},
]


def mixed_batch() -> list:
    rows = real_rows()
    random.Random(16).shuffle(rows)
    batch = rows[:1200]
    for offset, row in enumerate(ODD_ROWS):
        batch.insert(37 * offset + 5, row)
    return batch


def decisions(checked) -> dict[int, tuple]:
    decided: dict[int, tuple] = {index: ("failed", error.body()) for index, error in checked.failures}
    decided.update((index, ("median", kind)) for index, kind in zip(checked.median_rows, checked.median_types))
    for index, kind, lat, lon, stamp in zip(
        checked.model_rows, checked.complaint_types, checked.lats, checked.lons, checked.stamps
    ):
        lat, lon = (np.nan if v is None else float(v) for v in (lat, lon))
        decided[index] = ("model", kind, lat, lon, np.datetime64(stamp, "ms").astype(np.int64))
    return decided


def test_column_checks_decide_every_row_as_the_row_checks_do():
    batch = mixed_batch()
    assert _record_columns(batch) is not None  # the column path is the one under test
    by_columns, by_rows = decisions(check_records(batch)), decisions(_check_rows(batch))
    assert sorted(by_columns) == list(range(len(batch)))
    assert by_columns.keys() == by_rows.keys()
    for index in by_columns:
        np.testing.assert_equal(by_columns[index], by_rows[index], err_msg=str(batch[index]))
    # The odd rows' failures (a median of an unknown type fails later, when it is answered).
    failed = [index for index, decided in by_columns.items() if decided[0] == "failed"]
    assert len(failed) == 13


@pytest.mark.parametrize(
    "odd",
    [
        [1.5],  # a row that is not an object
        {"complaint_type": "rodent", "when": "2019-06-08"},  # an unknown field
        {"complaint_type": "rodent", "lat": "40.7", "lon": -73.9, "date": "2019-06-08 10:00:00"},  # a string: fine
        {"complaint_type": "rodent", "lat": float("nan"), "lon": -73.9, "date": "2019-06-08 10:00:00"},
        {"complaint_type": 7},
        {"complaint_type": "rodent", "date": 20190608},
    ],
)
def test_batches_of_other_shapes_are_checked_row_by_row_to_the_same_decisions(odd):
    batch = mixed_batch()[:300] + [odd]
    assert _record_columns(batch) is None
    by_all, by_rows = decisions(check_records(batch)), decisions(_check_rows(batch))
    assert by_all.keys() == by_rows.keys() == set(range(len(batch)))
    for index in by_all:
        np.testing.assert_equal(by_all[index], by_rows[index])


def test_dates_parse_as_parse_timestamps_parses_them():
    from eta311.model.features import _parse_by_pattern

    rng = random.Random(6)
    real = [row["date"] for row in real_rows()]
    assert len(set(map(len, real))) == 1  # all 19 characters: the array path

    def same(texts: list[str]) -> None:
        got, expected = parse_timestamps(texts), _parse_by_pattern(texts)
        assert got.dtype == expected.dtype and got.astype(np.int64).tolist() == expected.astype(np.int64).tolist()

    same(real)
    for _ in range(300):
        # Real dates with a character or two changed: out-of-range fields, separators, other digits.
        texts = real[:50]
        for _ in range(rng.randint(1, 2)):
            spot, at = rng.randrange(len(texts)), rng.randrange(19)
            text = texts[spot]
            texts = [*texts[:spot], text[:at] + rng.choice("0123456789T :-x٣\x00") + text[at + 1 :], *texts[spot + 1 :]]
        same(texts)
    same(["2020-02-29 12:00:00", "2019-12-31T23:59:59", "2019-06-08 24:00:00", "0000-01-01 00:00:00"])


@pytest.fixture
def snapshot(app):
    return app.extensions["model_store"].snapshot


def test_answers_are_the_bytes_of_the_answer_dicts(snapshot):
    batch = mixed_batch()
    reply = batch_reply(snapshot, batch)
    assert reply.blob == reference_reply(snapshot, batch)
    answers = json.loads(reply.blob)["predictions"]
    assert (reply.model_answers, reply.median_answers, reply.failed) == (
        sum(a.get("model") == "gbm" for a in answers),
        sum(a.get("model") == "medians" for a in answers),
        sum(a["status"] == "failure" for a in answers),
    )
    # Rows without coordinates say so, as a single request's answer does.
    missing = [a for row, a in zip(batch, answers) if "lat" not in row and a.get("model") == "gbm"]
    assert missing and all("missing_coordinates" in a["fallbacks"] for a in missing)
    for rows in ([], batch[:1], [{"complaint_type": "Rodent"}] * 3, ODD_ROWS, [r for r in batch if "lat" not in r]):
        assert batch_reply(snapshot, rows).blob == reference_reply(snapshot, rows)


def test_a_reloaded_snapshot_gets_templates_of_its_own(snapshot):
    batch = mixed_batch()[:300]
    assert batch_reply(snapshot, batch).blob == reference_reply(snapshot, batch)
    reloaded = dataclasses.replace(
        snapshot, card={**snapshot.card, "version": "gbm-reloaded"}, stats_version="stats-reloaded"
    )
    blob = batch_reply(reloaded, batch).blob
    assert blob == reference_reply(reloaded, batch)
    assert b'"model_version":"gbm-reloaded","statistics_version":"stats-reloaded"' in blob
    assert batch_reply(snapshot, batch).blob == reference_reply(snapshot, batch)


def test_answers_without_a_model_or_with_a_lone_surrogate_are_the_same_bytes(snapshot):
    batch = mixed_batch()[:200]
    unloaded = dataclasses.replace(snapshot, model=None)
    assert batch_reply(unloaded, batch).blob == reference_reply(unloaded, batch)
    odd = batch + [{"complaint_type": "rodent\ud800", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"}]
    assert batch_reply(snapshot, odd).blob == reference_reply(snapshot, odd)


def test_a_bad_date_in_the_middle_of_ten_thousand_rows_fails_that_row_alone(client, snapshot):
    rows = real_rows()
    batch = [rows[i % len(rows)] for i in range(10_000)]
    batch[5_000] = {**batch[5_000], "date": "2019-06-31 10:00:00"}
    reply = client.post("/predict", json={"records": batch})
    assert reply.status_code == 200
    body = reply.get_json()
    assert (body["count"], body["failed"]) == (10_000, 1)
    assert body["predictions"][5_000] == {
        "status": "failure",
        "success": False,
        "problem": DATE_PROBLEM,
        "field": "date",
        "index": 5_000,
    }
    assert reply.get_data() == reference_reply(snapshot, batch)


def test_memory_is_trimmed_when_the_last_large_body_is_answered():
    from eta311.web.idle_trim import IdleTrim

    trimmed: list[int] = []
    waits: list[float] = []
    batches = IdleTrim(
        trim=lambda pad: trimmed.append(pad) or 1, schedule=lambda wait, work: (waits.append(wait), work())
    )
    batches.begin()
    batches.begin()
    batches.end()
    assert trimmed == [] and batches.in_hand == 1  # another is still in hand: a busy worker never trims
    batches.end()
    assert trimmed == [0] and batches.in_hand == 0 and waits == [0.05]  # a moment later, under gevent
    assert IdleTrim(trim=lambda pad: trimmed.append(pad) or 1)._schedule is None  # no gevent here: no trim
    untimed = IdleTrim(trim=lambda pad: trimmed.append(pad) or 1)
    untimed.begin()
    untimed.end()
    assert trimmed == [0]


def test_a_large_batch_or_a_refused_large_body_leaves_none_in_hand(client, monkeypatch):
    import sys

    from eta311.web import predict
    from eta311.web.idle_trim import IdleTrim

    if sys.platform.startswith("linux"):
        assert predict.LARGE_BODIES._trim is not None  # glibc's malloc_trim, found
    trimmed: list[int] = []
    now = IdleTrim(trim=lambda pad: trimmed.append(pad) or 1, schedule=lambda wait, work: work())
    monkeypatch.setattr(predict, "LARGE_BODIES", now)
    with client.post("/predict", json={"records": real_rows()[:1000]}) as reply:
        assert reply.status_code == 200 and predict.LARGE_BODIES.in_hand == 1 and not trimmed
    assert predict.LARGE_BODIES.in_hand == 0 and trimmed == [0]  # once the answer is sent
    refused = client.post("/predict", data=b"[" + b"1," * 40_000 + b"1", content_type="application/json")
    assert refused.status_code == 400 and predict.LARGE_BODIES.in_hand == 0 and trimmed == [0, 0]
