"""Bad publishes (issue #12): the last good version stays served everywhere, and /health says every reason."""

from __future__ import annotations

import json
import zlib

import pytest

from eta311.data.publish import publish_medians, publish_model
from eta311.model.artifact import MEDIANS, MODEL_CARD
from eta311.model.estimator import ETAModel
from eta311.settings import Settings
from eta311.storage import LocalStore, content_version
from eta311.web.app import create_app
from eta311.web.served import LAST_GOOD, ModelStore


@pytest.fixture
def bundled(tmp_path, tiny_run):
    """A stand-in for models/: an older model and medians, as the repository bundles them."""
    store = LocalStore(tmp_path / "bundled")
    publish_model(store, b"older pickle", {**tiny_run.card}, tiny_run.model.to_bundle())
    publish_medians(store, {**tiny_run.medians, "rodent": 1.0})
    return store


def corrupt_bundle(bundle: bytes) -> bytes:
    """The bundle with a stretch of its compressed bytes flipped: np.load raises zlib.error, which once escaped."""
    for offset in range(len(bundle) // 10, len(bundle), max(1, len(bundle) // 50)):
        broken = bytearray(bundle)
        for i in range(offset, min(offset + 64, len(broken))):
            broken[i] ^= 0x5A
        try:
            ETAModel.from_bundle(bytes(broken))
        except zlib.error:
            return bytes(broken)
        except Exception:  # noqa: BLE001 - another kind of damage; look for the one that escaped
            continue
    raise AssertionError("no corruption found that raises zlib.error")


def publish_corrupt_model(store: LocalStore, card: dict, tiny_run) -> dict:
    """A card whose bundle's sha256 matches the (corrupt) bytes, as a half-written upload would be published."""
    broken = corrupt_bundle(tiny_run.model.to_bundle())
    name = f"model-broken-serving-{content_version(broken)[:12]}.npz"
    store.put(name, broken)
    bad = {
        **card,
        "version": "gbm-broken",
        "serving_artifact": {"name": name, "sha256": content_version(broken), "bytes": len(broken)},
    }
    store.put(MODEL_CARD, json.dumps(bad).encode())
    return bad


def app_on(store: LocalStore, fallback: LocalStore | None = None):
    settings = Settings(
        model_uri=str(store.root),
        fallback_uri=str(fallback.root) if fallback else None,
        reload_interval_seconds=0,
    )
    return create_app(settings)


def test_any_exception_keeps_the_last_good_model_and_medians_still_reload(published, tiny_run):
    store, card = published
    app = app_on(store)
    models = app.extensions["model_store"]
    publish_corrupt_model(store, card, tiny_run)
    publish_medians(store, {**tiny_run.medians, "rodent": 4321.0})  # a good medians file meanwhile
    assert models.refresh()  # must not raise
    assert models.current.model_version == card["version"]
    assert models.current.medians["rodent"] == 4321.0
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "degraded" and "zlib" in health["last_reload_error"]
    assert not models.refresh()  # refused once: not downloaded and loaded again every poll


def test_health_gives_every_reason(published, tiny_run):
    store, card = published
    app = app_on(store)
    publish_corrupt_model(store, card, tiny_run)
    store.put(MEDIANS, b'{"rodent": -5}')
    app.extensions["model_store"].refresh()
    app.extensions["model_store"].refresh()  # the next poll, when both are remembered as refused
    reason = app.test_client().get("/health").get_json()["last_reload_error"]
    assert f"{MEDIANS}: refused" in reason and f"{MODEL_CARD}: refused" in reason, reason


def test_a_cold_start_with_a_bad_card_serves_the_last_good_version(published, bundled, tiny_run):
    store, card = published
    app_on(store, bundled)  # an earlier dyno loaded and checked this version
    assert store.token(LAST_GOOD + MODEL_CARD) is not None
    publish_corrupt_model(store, card, tiny_run)
    cold = app_on(store, bundled)  # the next deploy or daily restart
    models = cold.extensions["model_store"]
    assert models.current.model_version == card["version"]  # not the bundled one, and not nothing
    assert cold.test_client().get("/health").get_json()["status"] == "degraded"


def test_a_recycled_worker_serves_the_last_good_version_not_the_boot_time_one(tmp_path, bundled, tiny_run):
    """The master booted before anything was published; workers then loaded a publish; then a bad one came."""
    store = LocalStore(tmp_path / "published")
    master = ModelStore(store, 0, bundled, record_last_good=True)
    master.refresh()
    boot_version = master.current.model_version
    card = publish_model(store, b"newer pickle", {**tiny_run.card}, tiny_run.model.to_bundle())
    worker = ModelStore(store, 0, bundled, record_last_good=True)
    worker.refresh()
    assert worker.current.model_version == card["version"] != boot_version
    publish_corrupt_model(store, card, tiny_run)
    master.refresh()  # what a worker forked from the boot-time master does first
    assert master.current.model_version == card["version"]
    assert "refused" in master.last_error


def test_a_vanished_publish_is_reported(published, tiny_run):
    store, card = published
    app = app_on(store)
    for name in (MEDIANS, MODEL_CARD):
        (store.root / name).unlink()
    models = app.extensions["model_store"]
    assert not models.refresh()
    assert models.current.model_version == card["version"]
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "degraded"
    assert (
        "model_card.json: vanished" in health["last_reload_error"]
        and "medians.json: vanished" in health["last_reload_error"]
    )
    publish_medians(store, tiny_run.medians)
    models.refresh()
    assert "medians.json" not in models.last_error  # back: that reason goes


def test_nothing_published_yet_is_not_a_problem(tmp_path, bundled):
    app = app_on(LocalStore(tmp_path / "empty"), bundled)
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "ok" and health["model_loaded"], health
