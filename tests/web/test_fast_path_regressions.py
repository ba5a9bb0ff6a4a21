"""Requests that the speed work's fast paths once answered differently from the row-by-row paths they replace."""

from __future__ import annotations

import numpy as np
import pytest
import requests

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


def test_a_large_body_refused_in_the_thread_pool_leaves_no_traceback_in_the_log():
    # Large bodies are parsed, checked and answered in gevent's thread pool (off_loop), and gevent
    # prints every exception raised there to stderr: each 4xx for a large body was a crash-like
    # traceback in the service's log, outside its logfmt lines.
    from live import output, procfile_web

    rows = [{"complaint_type": "Rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"}] * 10_001
    with procfile_web() as (base, process):
        too_many = requests.post(f"{base}/predict", json={"records": rows}, timeout=30)
        assert too_many.status_code == 413 and "At most 10000 records" in too_many.json()["problem"]
        broken = requests.post(
            f"{base}/predict", data=b'{"records": [' + b"1," * 40_000, headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400 and broken.json()["problem"].startswith("The body is not valid JSON")
        fine = requests.post(f"{base}/predict", json={"records": rows[:5_000]}, timeout=30)
        assert fine.status_code == 200 and fine.json()["failed"] == 0
        log = output(process)
    assert "Traceback" not in log and "failed with" not in log, log[-3000:]


def test_what_the_work_raised_is_freed_with_its_frames_once_handled():
    # off_loop's pool branch without the pool: an error handed back as a value and raised again
    # must not sit in a reference cycle, or the work's locals (a large body's rows) outlive the request.
    import gc
    import weakref

    from eta311.web.offload import _outcome, _returned

    class Rows(list):  # a list that a weak reference can watch
        pass

    held: list = []

    def work() -> None:
        rows = Rows([{"complaint_type": "Rodent"}] * 10_001)
        held.append(weakref.ref(rows))
        raise ValueError("At most 10000 records")

    gc.disable()
    try:
        with pytest.raises(ValueError, match="At most 10000 records") as raised:
            _returned(*_outcome(work, ()))
        assert raised.traceback[-1].name == "work"  # the frames it was raised in are kept for the log
        del raised
        rows_alive = held[0]() is not None
        assert not rows_alive, "the work's rows outlived its handled error (a reference cycle)"
    finally:
        gc.enable()
