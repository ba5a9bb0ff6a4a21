"""Shared fixtures: real 311 records, a tiny model fitted on them, a published store and the app."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eta311.data.publish import publish_medians, publish_trained_model, publish_type_stats  # noqa: E402
from eta311.model import training  # noqa: E402
from eta311.settings import Settings  # noqa: E402
from eta311.storage import LocalStore  # noqa: E402
from eta311.web.app import create_app  # noqa: E402

TINY = training.Boosting(max_iter=15, min_samples_leaf=20)
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind(tmp_path_factory):
    """Every temporary file the tests or their servers make goes to one folder, which must be empty at the end.

    tmp_path folders are pytest's own (kept only for failed tests, see pytest.ini), so its base is made first.
    """
    tmp_path_factory.getbasetemp()
    folder = Path(tempfile.mkdtemp(prefix="eta311-tests-"))
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"], tempfile.tempdir = str(folder), None  # children inherit TMPDIR
    try:
        yield folder
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
        tempfile.tempdir = None
        shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"tests left temporary files behind: {left}"


@pytest.fixture(scope="session")
def fixture_days():
    return training.read_days(LocalStore(FIXTURES / "nyc311"), progress=lambda _: None)


@pytest.fixture(scope="session")
def tiny_run(fixture_days):
    """A real model, small enough to fit in a second, through the production training path."""
    return training.train_on_days(fixture_days, holdout_days=7, boosting=TINY, progress=lambda _: None)


@pytest.fixture
def published(tmp_path, tiny_run):
    """A store holding the tiny model and its medians, as the training script publishes them."""
    store = LocalStore(tmp_path / "models")
    card = publish_trained_model(store, tiny_run.model, tiny_run.card)
    publish_medians(store, tiny_run.medians)
    publish_type_stats(store, tiny_run.stats, tiny_run.stats_as_of)
    return store, card


@pytest.fixture
def app(published):
    store, _ = published
    return create_app(Settings(model_uri=str(store.root), fallback_uri=None, reload_interval_seconds=0))


@pytest.fixture
def client(app):
    return app.test_client()
