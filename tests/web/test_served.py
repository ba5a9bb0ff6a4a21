"""Loading, checking and swapping versions; every refusal keeps the last good one."""

import json
import pickle

import pytest

from eta311.data.publish import publish_medians, publish_model
from eta311.model.artifact import MODEL_CARD
from eta311.storage import LocalStore
from eta311.web.served import ModelStore


def loaded(store):
    models = ModelStore(store, reload_interval_seconds=0)
    assert models.refresh()
    return models


def test_loads_model_and_medians(published):
    store, card = published
    snapshot = loaded(store).snapshot
    assert snapshot.model_version == card["version"] and snapshot.medians["noise - residential"] > 0


def test_checksum_mismatch_keeps_last_good(published, caplog):
    store, card = published
    models = loaded(store)
    bad = json.loads(store.get(MODEL_CARD))
    bad["serving_artifact"]["sha256"] = "0" * 64
    bad["version"] = "gbm-tampered"
    store.put(MODEL_CARD, json.dumps(bad).encode())
    assert not models.refresh()
    assert models.snapshot.model_version == card["version"]
    assert "does not match its card" in models.last_error
    assert "kept serving" in caplog.text


def test_a_pickle_only_card_from_another_sklearn_is_refused(published):
    store, card = published
    models = loaded(store)
    other = json.loads(store.get(MODEL_CARD))
    del other["serving_artifact"]  # an older card: the pickle is all there is
    other["libraries"]["scikit-learn"] = "0.24.2"
    store.put(MODEL_CARD, json.dumps(other).encode())
    models.refresh()
    assert "scikit-learn 0.24.2" in models.last_error and models.snapshot.model is not None


def test_pickle_from_another_sklearn_escalates_warning(published, tiny_run):
    """The loader turns InconsistentVersionWarning into a refusal, even when the card looks right."""
    import sklearn

    store, _ = published
    models = loaded(store)
    real = sklearn.__version__.encode()
    forged = ("0." + "0" * (len(real) - 2)).encode()  # same length, so the pickle stays well formed
    blob = pickle.dumps(tiny_run.model).replace(real, forged)
    card = {k: v for k, v in json.loads(store.get(MODEL_CARD)).items() if k not in ("artifact", "version")}
    publish_model(store, blob, card)
    models.refresh()
    assert "InconsistentVersionWarning" in models.last_error or "Trying to unpickle" in models.last_error
    assert models.snapshot.model is not None


@pytest.mark.parametrize("medians", [b"not json", b"{}", b'{"rodent": -1}', b'{"rodent": "soon"}', b"[1, 2]"])
def test_bad_medians_are_refused(published, medians):
    store, _ = published
    models = loaded(store)
    before = models.snapshot.medians
    store.put("medians.json", medians)
    models.refresh()
    assert models.snapshot.medians == before and models.last_error


def test_garbage_artifact_is_refused(published):
    store, _ = published
    models = loaded(store)
    card = {k: v for k, v in json.loads(store.get(MODEL_CARD)).items() if k not in ("artifact", "version")}
    publish_model(store, b"\x80\x05garbage", card)
    models.refresh()
    assert models.last_error and models.snapshot.model is not None


def test_new_versions_swap_in(published, tiny_run):
    store, card = published
    models = loaded(store)
    publish_medians(store, {**tiny_run.medians, "rodent": 1234.5})
    assert models.refresh()
    assert models.snapshot.medians["rodent"] == 1234.5
    assert models.snapshot.model_version == card["version"]


def test_store_down_keeps_serving(published, tmp_path):
    store, card = published
    models = loaded(store)
    models.sources[0] = LocalStore(tmp_path / "gone")  # nothing there: tokens are None, nothing changes
    assert not models.refresh()
    assert models.snapshot.model_version == card["version"]


def test_a_forked_worker_gets_a_fresh_lock_and_catches_up_at_once(published, tiny_run):
    """Gunicorn forks workers from the preloaded master, possibly while its lock is held."""
    import os
    import time

    store, _ = published
    models = ModelStore(store, reload_interval_seconds=60)
    assert models.refresh()
    publish_medians(store, {**tiny_run.medians, "rodent": 77.0})  # newer than what the master loaded
    with models._lock:  # as if a refresh were running in the master at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the worker: must not deadlock, and must not wait 60 s for its first look
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and models.current.medians.get("rodent") != 77.0:
                time.sleep(0.02)
            os._exit(0 if models.current.medians.get("rodent") == 77.0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "rodent" not in models.current.medians or models.current.medians["rodent"] != 77.0  # the master did not poll


def test_the_serving_bundle_loads_without_scikit_learn(published):
    """A fresh interpreter serves from the bundle and never imports scikit-learn (1.6-2.1 s, ~60 MB)."""
    import subprocess
    import sys

    store, card = published
    code = (
        "import sys; from eta311.storage import LocalStore; from eta311.web.served import ModelStore;"
        f"m = ModelStore(LocalStore({str(store.root)!r}), 0); assert m.refresh();"
        "print(m.current.model_version, 'sklearn' in sys.modules, 'scipy' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(__import__("live").ROOT)
    ).stdout.split()
    assert out == [card["version"], "False", "False", "False"]


def test_a_corrupt_serving_bundle_is_refused(published):
    from eta311.storage import content_version

    store, card = published
    models = loaded(store)
    garbage = b"PK\x03\x04 not really a zip"
    store.put("broken.npz", garbage)
    bad = {
        **card,
        "version": "gbm-broken",
        "serving_artifact": {"name": "broken.npz", "sha256": content_version(garbage)},
    }
    store.put(MODEL_CARD, json.dumps(bad).encode())
    assert not models.refresh()
    assert "serving bundle cannot be read" in models.last_error and models.snapshot.model_version == card["version"]
