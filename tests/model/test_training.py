"""Training: split by date, the card, reproducibility, and the bundled model's quality."""

import json
from pathlib import Path

import numpy as np

from eta311.model import training
from eta311.storage import content_version

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_holdout_is_the_latest_days(fixture_days):
    from eta311.model.dataset import resolved, to_columns

    cols = resolved(to_columns(r for d in fixture_days for r in d.records))
    train, test = training.split_by_date(cols, holdout_days=7)
    assert train.created.max() < test.created.min()
    assert str(test.created.min().astype("datetime64[D]")) == "2019-05-11"


def test_rolling_medians_never_look_ahead():
    from eta311.model.dataset import Columns

    days = np.array(["2019-05-01", "2019-05-02", "2019-05-02", "2019-05-03"], dtype="datetime64[ms]")
    cols = Columns(["a", "a", "a", "a"], np.zeros(4), np.zeros(4), days, np.array([1.0, 100.0, 100.0, 5.0]))
    rolling = training.rolling_recent_log_medians(cols, window_days=30)
    assert np.isnan(rolling[0])  # nothing before the first day
    assert rolling[1] == rolling[2] == np.log1p(1.0)  # day two sees only day one
    assert rolling[3] == np.log1p(100.0)


def test_card_describes_the_run(tiny_run):
    card = tiny_run.card
    assert card["training_window"] == {"first_day": "2019-05-04", "last_day": "2019-05-05"}
    assert card["holdout_window"]["first_day"] == "2019-05-11"
    assert card["rows"]["train"] + card["rows"]["holdout"] <= card["rows"]["records_read"]
    assert {"model_mae", "median_all_training_days_mae", "median_latest_30_days_mae"} <= set(card["metrics"])
    assert card["libraries"]["scikit-learn"]
    assert "noise - residential" in card["complaint_types"]


def test_training_is_reproducible(fixture_days, tiny_run):
    saved = dict(training.BOOSTING)
    training.BOOSTING.update(max_iter=15, min_samples_leaf=20)
    try:
        again = training.train_on_days(fixture_days, holdout_days=7)
    finally:
        training.BOOSTING.clear()
        training.BOOSTING.update(saved)
    assert again.card["metrics"] == tiny_run.card["metrics"]


def test_immature_days_are_skipped():
    young = training.DayFile(np.datetime64("2019-06-14").item(), [{"closed_date": "x"}] + [{}] * 3)
    old = training.DayFile(np.datetime64("2019-06-01").item(), [{"closed_date": "x"}] * 9 + [{}])
    kept, skipped = training.mature_days([old, young])
    assert kept == [old] and skipped == ["2019-06-14 (25% closed)"]


def test_bundled_model_beats_both_baselines_and_is_small():
    card = json.loads((MODELS / "model_card.json").read_text())
    metrics = card["metrics"]
    assert metrics["model_mae"] < metrics["median_latest_30_days_mae"] < metrics["median_all_training_days_mae"]
    artifact = (MODELS / card["artifact"]["name"]).read_bytes()
    assert len(artifact) <= 5_000_000
    assert content_version(artifact) == card["artifact"]["sha256"]
    medians = json.loads((MODELS / "medians.json").read_text())
    assert all(name == name.lower() and round(hours, 2) == hours for name, hours in medians.items())
