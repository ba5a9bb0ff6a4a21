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


def test_estimate_flags_fallbacks(tiny_run):
    model = tiny_run.model
    known = model.estimate("noise - residential", 40.7, -73.9, "2019-06-08 00:00:09")
    assert known.fallbacks == []
    unknown = model.estimate("a type nobody filed", None, None, "2019-06-08 00:00:09")
    assert unknown.fallbacks == ["unknown_complaint_type", "missing_coordinates"]
    for estimate in (known, unknown):
        assert 0 <= estimate.low <= estimate.hours <= estimate.high


def test_location_and_time_move_the_estimate(tiny_run):
    model = tiny_run.model
    answers = {
        model.estimate("noise - residential", lat, lon, date).hours
        for lat, lon, date in [
            (40.7, -73.9, "2019-06-08 00:00:09"),
            (40.6, -74.1, "2019-06-08 15:00:00"),
            (40.85, -73.85, "2019-06-12 03:00:00"),
        ]
    }
    assert len(answers) > 1


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
    assert served.estimators == [] and served.encoder.type_stats == model.encoder.type_stats
    expected = model.predict_matrix(features, use_sklearn=True)
    assert len(features) == 2400
    assert abs(served.predict_matrix(features) - expected).max() < 1e-9
