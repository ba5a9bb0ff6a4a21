"""The trigger: medians recomputed from raw days and published only on change; retraining gated on MAE."""

import json

import pytest
from live import ROOT

from eta311.data.trigger import raw_fingerprint, recompute_medians, retrain
from eta311.model import training
from eta311.model.artifact import MEDIANS, MODEL_CARD
from eta311.model.dataset import decode_day, encode_day, resolved, to_columns
from eta311.storage import LocalStore
from eta311.web.served import ModelStore

FIXTURE_DAYS = sorted((ROOT / "tests" / "fixtures" / "nyc311").glob("*.json.gz"))
quiet = lambda _: None  # noqa: E731
SMALL = training.Boosting(max_iter=15, min_samples_leaf=20)


@pytest.fixture
def stores(tmp_path):
    raw, published = LocalStore(tmp_path / "data"), LocalStore(tmp_path / "data" / "published")
    for path in FIXTURE_DAYS[:3]:
        add_day(raw, path)
    return raw, published


def add_day(raw, path):
    raw.put(f"raw/{path.name}", path.read_bytes())


def test_medians_come_from_the_raw_days_and_publish_once(stores):
    raw, published = stores
    first = recompute_medians(raw, published, progress=quiet)
    assert first.published and first.days_used == ["2019-05-04", "2019-05-05", "2019-05-11"]
    records = [r for p in FIXTURE_DAYS[:3] for r in decode_day(p.read_bytes())]
    expected = training.latest_medians(resolved(to_columns(records)))
    assert json.loads(published.get(MEDIANS)) == expected
    token = published.token(MEDIANS)
    again = recompute_medians(raw, published, progress=quiet)
    assert not again.published and again.version == first.version and published.token(MEDIANS) == token


def test_a_new_day_changes_the_medians_and_the_fingerprint(stores):
    raw, published = stores
    first = recompute_medians(raw, published, progress=quiet)
    before = raw_fingerprint(raw)
    add_day(raw, FIXTURE_DAYS[3])
    assert raw_fingerprint(raw) != before and len(raw_fingerprint(raw)) == 4
    second = recompute_medians(raw, published, progress=quiet)
    assert second.published and second.version != first.version and second.days_used[-1] == "2019-05-12"


def test_the_window_counts_back_from_the_newest_day(stores):
    raw, published = stores
    result = recompute_medians(raw, published, window_days=7, progress=quiet)
    assert result.days_used == ["2019-05-05", "2019-05-11"]


def test_a_day_with_most_requests_open_is_left_out(stores):
    raw, published = stores
    young = decode_day(FIXTURE_DAYS[3].read_bytes())
    for record in young[: len(young) // 2]:
        record.pop("closed_date", None)
    raw.put("raw/2019-05-12.json.gz", encode_day(young))
    result = recompute_medians(raw, published, progress=quiet)
    assert result.days_used[-1] == "2019-05-11" and result.days_skipped[0].startswith("2019-05-12")


def test_no_usable_day_publishes_nothing(tmp_path):
    raw = LocalStore(tmp_path)
    young = [{k: v for k, v in r.items() if k != "closed_date"} for r in decode_day(FIXTURE_DAYS[0].read_bytes())]
    raw.put("raw/2019-05-04.json.gz", encode_day(young))
    with pytest.raises(ValueError, match="no raw day"):
        recompute_medians(raw, LocalStore(tmp_path / "published"), progress=quiet)
    assert LocalStore(tmp_path / "published").token(MEDIANS) is None


def test_retrain_publishes_when_there_is_no_current_model(stores):
    raw, published = stores
    add_day(raw, FIXTURE_DAYS[3])
    result = retrain(raw, published, [published], holdout_days=7, progress=quiet, boosting=SMALL)
    assert result.published and result.current_mae is None
    card = json.loads(published.get(MODEL_CARD))
    assert card["version"] == result.version and card["metrics"]["model_mae"] > 0 and result.candidate_mae > 0
    models = ModelStore(published, reload_interval_seconds=0)
    assert models.refresh() and models.snapshot.model_version == result.version


def test_retrain_is_published_when_no_worse_and_refused_when_worse(stores):
    raw, published = stores
    add_day(raw, FIXTURE_DAYS[3])
    good = retrain(raw, published, [published], holdout_days=7, progress=quiet, boosting=SMALL)
    same = retrain(raw, published, [published], holdout_days=7, progress=quiet, boosting=SMALL)
    assert same.published and same.current_mae == same.candidate_mae == good.candidate_mae  # equal is no worse
    barely = training.Boosting(max_iter=1, learning_rate=0.01)  # a candidate that has barely learnt anything
    worse = retrain(raw, published, [published], holdout_days=7, progress=quiet, boosting=barely)
    assert not worse.published and worse.candidate_mae > worse.current_mae == good.candidate_mae
    assert json.loads(published.get(MODEL_CARD))["version"] == good.version


def test_an_unloadable_current_model_does_not_block_a_good_candidate(stores):
    raw, published = stores
    add_day(raw, FIXTURE_DAYS[3])
    published.put(MODEL_CARD, b'{"version": "gbm-broken", "artifact": {"name": "missing.pkl", "sha256": "0"}}')
    result = retrain(raw, published, [published], holdout_days=7, progress=quiet, boosting=SMALL)
    assert result.published and result.current_mae is None


def test_watch_fires_once_per_change_of_the_raw_listing(stores):
    from eta311.data.trigger import watch

    raw, _ = stores
    calls, rounds = [], iter(range(6))

    def on_change():
        calls.append(sorted(raw_fingerprint(raw)))
        if len(calls) == 1:
            raise RuntimeError("a failing round is retried, not fatal")

    def stop():
        round_number = next(rounds, None)
        if round_number == 3:
            add_day(raw, FIXTURE_DAYS[3])  # a new day lands between rounds
        return round_number is None

    watch(raw, on_change, interval_seconds=0, stop=stop)
    # round 0 fails, round 1 retries the same listing, round 2 sees nothing new, round 3 sees the new day
    assert [len(c) for c in calls] == [3, 3, 4]
