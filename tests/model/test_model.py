"""The compiled forest against scikit-learn, fallbacks, and the intervals."""

import numpy as np
import pytest

from eta311.model.dataset import to_columns


def test_compiled_forest_equals_sklearn_on_real_records(tiny_run, fixture_days):
    cols = to_columns(r for d in fixture_days for r in d.records)
    model = tiny_run.model
    features = model.encoder.transform(cols.complaint_types, cols.latitudes, cols.longitudes, cols.created)
    assert np.isnan(features).any(), "the fixture should exercise missing values"
    compiled = model.predict_matrix(features, use_sklearn=False)
    reference = model.predict_matrix(features, use_sklearn=True)
    np.testing.assert_allclose(compiled, reference, rtol=1e-9, atol=1e-9)


def test_compiled_forest_chunks_agree_with_one_pass(tiny_run, fixture_days):
    cols = to_columns(r for d in fixture_days for r in d.records)
    features = tiny_run.model.encoder.transform(cols.complaint_types, cols.latitudes, cols.longitudes, cols.created)
    forest = tiny_run.model.compiled
    np.testing.assert_allclose(forest.predict(features, chunk_rows=7), forest.predict(features, chunk_rows=10_000))


def test_one_row_is_predicted_exactly_as_in_a_batch(tiny_run, fixture_days):
    # A request takes predict_matrix's one-row path, a batch the 2-D one: the same hours to the last bit.
    from eta311.model.estimator import ETAModel

    cols = to_columns(r for d in fixture_days for r in d.records)
    features = tiny_run.model.encoder.transform(cols.complaint_types, cols.latitudes, cols.longitudes, cols.created)
    rows = features[::6]
    assert np.isnan(rows).any()
    widened = ETAModel.from_bundle(tiny_run.model.to_bundle())
    widened.interval_widening += 0.4
    for model in (tiny_run.model, widened):
        one_by_one = np.vstack([model.predict_matrix(row[None, :]) for row in rows])
        np.testing.assert_array_equal(one_by_one, model.predict_matrix(rows, use_sklearn=False))
        assert (np.diff(one_by_one, axis=1) >= 0).all() and (one_by_one >= 0).all()


def served(tiny_run, stats=None, stats_version=None):
    """What the service holds: the numpy bundle (never the pickle), its card, and maybe published statistics."""
    from eta311.model.estimator import ETAModel
    from eta311.web.served import Snapshot

    model = ETAModel.from_bundle(tiny_run.model.to_bundle())
    card = {**tiny_run.card, "version": "gbm-test"}
    return Snapshot(model=model, card=card, stats=stats, stats_version=stats_version)


def ask(snapshot, *rows):
    from eta311.web.estimates import model_answers
    from eta311.web.payloads import PredictionRequest

    return model_answers(snapshot, [PredictionRequest(t, lat, lon, date) for t, lat, lon, date in rows])


def test_answers_flag_fallbacks_and_carry_the_measured_coverage(tiny_run):
    known, unknown = ask(
        served(tiny_run),
        ("noise - residential", 40.7, -73.9, "2019-06-08 00:00:09"),
        ("a type nobody filed", None, None, "2019-06-08 00:00:09"),
    )
    assert known["fallbacks"] == [] and unknown["fallbacks"] == ["unknown_complaint_type", "missing_coordinates"]
    bounds = tiny_run.card["metrics"]["interval_coverage"]
    for answer in (known, unknown):
        interval = answer["interval"]
        assert 0 <= interval["low"] <= answer["estimated_time"] <= interval["high"]
        assert interval["coverage_bounds"] == [bounds["lower"], bounds["upper"]]
        assert interval["coverage"] == round((bounds["lower"] + bounds["upper"]) / 2, 3)
        assert answer["model_version"] == "gbm-test" and answer["statistics_version"] == "gbm-test-own"


def test_location_and_time_move_the_served_estimate(tiny_run):
    rows = [
        ("noise - residential", 40.7, -73.9, "2019-06-08 00:00:09"),
        ("noise - residential", 40.6, -74.1, "2019-06-08 15:00:00"),
        ("noise - residential", 40.85, -73.85, "2019-06-12 03:00:00"),
    ]
    assert len({a["estimated_time"] for a in ask(served(tiny_run), *rows)}) > 1


def test_published_statistics_move_the_served_estimate(tiny_run):
    row = ("noise - residential", 40.7, -73.9, "2019-06-08 00:00:09")
    before = ask(served(tiny_run), row)[0]
    slower = {t: tuple(v + 1.5 for v in values) for t, values in tiny_run.stats.items()}
    after = ask(served(tiny_run, slower, "stats-slower"), row)[0]
    assert after["statistics_version"] == "stats-slower"
    assert after["estimated_time"] > before["estimated_time"]


def test_pickle_round_trip_rebuilds_compiled_forest(tiny_run):
    import pickle

    clone = pickle.loads(pickle.dumps(tiny_run.model))
    row = clone.features(["rodent"], [40.7], [-73.9], ["2019-05-04 10:00:00"])
    assert clone.predict_matrix(row) == pytest.approx(tiny_run.model.predict_matrix(row))


def test_the_serving_bundle_predicts_as_scikit_learn_does(tiny_run, fixture_days):
    from eta311.model.dataset import to_columns
    from eta311.model.estimator import ETAModel

    columns = to_columns(r for d in fixture_days for r in d.records)
    model = tiny_run.model
    features = model.encoder.transform(columns.complaint_types, columns.latitudes, columns.longitudes, columns.created)
    served = ETAModel.from_bundle(model.to_bundle())
    assert served.estimators == [] and served.encoder.type_stats.keys() == model.encoder.type_stats.keys()
    for name, values in model.encoder.type_stats.items():
        np.testing.assert_array_equal(served.encoder.type_stats[name], values)
    assert served.interval_widening == model.interval_widening
    expected = model.predict_matrix(features, use_sklearn=True)
    assert len(features) == 2400
    assert abs(served.predict_matrix(features) - expected).max() < 1e-9


def test_the_bundled_model_loads_as_the_service_loads_it():
    # Its trees split missing statistics from all others (infinite thresholds): the bundle stores
    # them made finite, and loading must accept what compiling wrote.
    import json
    from pathlib import Path

    from eta311.model.artifact import load_model

    models = Path(__file__).resolve().parents[2] / "models"
    card = json.loads((models / "model_card.json").read_text())
    model = load_model({k: v for k, v in card.items() if k != "artifact"}, lambda name: (models / name).read_bytes())
    assert model.estimators == [] and np.isfinite(model.compiled.split_keys).all()


@pytest.mark.parametrize("missing", [(), (0,), (0, 1), (1,), (0, 1, 2), (0, 2)])
def test_one_row_offset_picks_the_same_statistic_as_the_batch_rule(tiny_run, missing):
    from eta311.model.estimator import OFFSET_STATS, log_offsets
    from eta311.model.features import COLUMN, FEATURE_NAMES

    row = np.arange(1.0, len(FEATURE_NAMES) + 1.0)
    for i in missing:
        row[COLUMN[OFFSET_STATS[i]]] = np.nan
    model = tiny_run.model
    expected = log_offsets(row[None, :], model.global_log_median)[0]
    assert model._row_offset(row.tolist()) == expected
