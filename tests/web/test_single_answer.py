"""A single request's answer (the route's own one-row path) is the batch path's answer, byte for byte, on real requests."""

import json
from pathlib import Path

import orjson
import pytest

from eta311.settings import Settings
from eta311.web.app import create_app
from eta311.web.estimates import batch_answers, model_answers, single_estimate
from eta311.web.payloads import PredictionRequest, prediction_request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundled_snapshot():
    app = create_app(Settings(model_uri=str(ROOT / "models"), fallback_uri=None, reload_interval_seconds=0))
    return app.extensions["model_store"].snapshot


def real_records() -> list[dict]:
    """Held-out requests as sent, with coordinates left out, and with a type the model never saw."""
    rows = json.loads((ROOT / "bench" / "heldout_requests.json").read_text())[:400]
    rows += [{"complaint_type": r["complaint_type"], "date": r["date"]} for r in rows[:60]]
    rows += [{**r, "complaint_type": "A type nobody filed"} for r in rows[:20]]
    return rows


def test_one_request_is_answered_exactly_as_in_a_batch(bundled_snapshot):
    records = real_records()
    in_batch = batch_answers(bundled_snapshot, records)
    assert {tuple(a["fallbacks"]) for a in in_batch} >= {(), ("missing_coordinates",), ("unknown_complaint_type",)}
    for record, batched in zip(records, in_batch):
        request = prediction_request(record)
        alone = single_estimate(bundled_snapshot, request)
        assert (
            orjson.dumps(alone) == orjson.dumps(batched) == orjson.dumps(model_answers(bundled_snapshot, [request])[0])
        )


def test_a_request_made_in_code_without_a_parsed_date_is_answered_as_one_that_was_checked(bundled_snapshot):
    record = json.loads((ROOT / "bench" / "heldout_requests.json").read_text())[0]
    checked = prediction_request(record)
    unparsed = PredictionRequest(checked.complaint_type, checked.lat, checked.lon, checked.date)
    assert unparsed.stamp is None
    assert orjson.dumps(single_estimate(bundled_snapshot, unparsed)) == orjson.dumps(
        single_estimate(bundled_snapshot, checked)
    )
