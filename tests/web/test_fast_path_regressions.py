"""Requests that the speed work's fast paths once answered differently from the row-by-row paths they replace."""

from __future__ import annotations

import numpy as np

from eta311.web.payloads import DATE_PROBLEM, _canonical_type, _check_rows, check_records

GOOD = {"complaint_type": "Rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"}


def test_a_lone_surrogate_in_a_date_of_the_usual_length_fails_its_row_not_the_batch(client):
    # JSON carries "\ud800" (json.loads reads it); at 19 characters the date took the array parse,
    # whose UTF-8 encoding of the joined dates raised: a 500 for the whole batch.
    odd = {**GOOD, "date": "2019-06-08 10:00:0\ud800"}
    good = '{"complaint_type": "Rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"}'
    body = '{"records": [' + good + ", " + good.replace('10:00:00"', '10:00:0\\ud800"') + "]}"
    reply = client.post("/predict", data=body, content_type="application/json")
    assert reply.status_code == 200
    answers = reply.get_json()["predictions"]
    assert answers[0]["model"] == "gbm"
    assert answers[1] == {"status": "failure", "success": False, "problem": DATE_PROBLEM, "field": "date", "index": 1}
    by_columns, by_rows = check_records([GOOD, odd]), _check_rows([GOOD, odd])
    assert [(i, e.body()) for i, e in by_columns.failures] == [(i, e.body()) for i, e in by_rows.failures]


def test_over_long_types_in_a_batch_are_not_kept_by_the_type_cache(client):
    # The column checks folded every distinct type, too long or not, through an lru_cache of 4,096
    # entries: each batch with a megabyte-long type kept it (and its folded copy) in the worker for good.
    _canonical_type.cache_clear()
    rows = [GOOD, {"complaint_type": "Rodent"}] + [{"complaint_type": f"{n}" + "x" * 200_000} for n in range(5)]
    reply = client.post("/predict", json={"records": rows})
    assert reply.status_code == 200
    answers = reply.get_json()["predictions"]
    assert [a.get("field") for a in answers] == [None, None] + ["complaint_type"] * 5
    assert _canonical_type.cache_info().currsize == 1  # "Rodent", the only type that fits
    checked = check_records(rows)
    assert checked.model_rows == [0] and checked.median_rows == [1]
    assert np.isin([i for i, _ in checked.failures], range(2, 7)).all()
