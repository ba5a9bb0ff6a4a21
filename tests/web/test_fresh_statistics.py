"""Freshness: statistics the trigger publishes reach the running service's estimates, with no retrain or restart."""

import json

from eta311.data.publish import publish_type_stats
from eta311.data.trigger import recompute_type_stats
from eta311.model import type_stats
from eta311.model.artifact import MODEL_CARD
from eta311.model.dataset import decode_day, encode_day
from eta311.storage import LocalStore

QUERY = "/predict/residential?lat=40.7&lon=-73.9&date=2019-06-08%2000:00:09"


def estimate(client):
    body = client.get(QUERY).get_json()
    assert body["status"] == "success", body
    return body


def test_published_statistics_move_the_estimate_without_retrain_or_restart(app, client, published, tiny_run):
    store, card = published
    models = app.extensions["model_store"]
    before = estimate(client)
    assert before["model_version"] == card["version"] and before["statistics_version"].startswith("stats-")
    # A slower week: the trigger publishes new statistics; the model file is untouched.
    slower = {t: tuple(v + 1.0 for v in values) for t, values in tiny_run.stats.items()}
    publish_type_stats(store, slower, "2019-06-20T00:00:00.000")
    assert models.refresh()
    after = estimate(client)
    assert after["model_version"] == before["model_version"] == json.loads(store.get(MODEL_CARD))["version"]
    assert after["statistics_version"] != before["statistics_version"]
    assert after["estimated_time"] > before["estimated_time"]


def test_bad_statistics_keep_the_last_good_ones(app, client, published):
    store, _ = published
    models = app.extensions["model_store"]
    before = estimate(client)
    store.put(type_stats.TYPE_STATS, b'{"format": 1, "names": ["wrong"], "types": {}}')
    assert not models.refresh()
    assert "type_stats.json" in models.last_error
    assert estimate(client)["statistics_version"] == before["statistics_version"]


def test_the_trigger_publishes_statistics_the_service_then_uses(app, client, published, fixture_days, tmp_path):
    store, _ = published
    raw = LocalStore(tmp_path / "raw-store")
    for day in fixture_days[:-1]:
        raw.put(f"raw/{day.day}.json.gz", encode_day(day.records))
    first = recompute_type_stats(raw, store, progress=lambda _: None)
    assert first.published and not recompute_type_stats(raw, store, progress=lambda _: None).published
    assert app.extensions["model_store"].refresh()
    assert estimate(client)["statistics_version"] == first.version
    # A slower newest day: every noise request stays open far longer; the statistics, and the estimate, follow.
    newest = fixture_days[-1]
    slow = [{k: v for k, v in r.items() if k != "closed_date"} for r in decode_day(encode_day(newest.records))]
    slow.append({"created_date": "2019-06-12T00:00:00.000", "complaint_type": "Rodent"})  # a later pull
    raw.put(f"raw/{newest.day}.json.gz", encode_day(slow))
    second = recompute_type_stats(raw, store, progress=lambda _: None)
    assert second.published and second.version != first.version
    before = estimate(client)["estimated_time"]
    assert app.extensions["model_store"].refresh()
    answer = estimate(client)
    assert answer["statistics_version"] == second.version and answer["estimated_time"] != before
