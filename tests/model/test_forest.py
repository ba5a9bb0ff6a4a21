"""The compiled forest: one row and many agree with scikit-learn, infinite thresholds, and thresholds it refuses."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from eta311.model.dataset import to_columns
from eta311.model.features import COLUMN
from eta311.model.forest import FEATURE_LIMIT, CompiledForest


def fitted(features: np.ndarray, target: np.ndarray, **options) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=20, random_state=0, **options).fit(features, target)


def test_one_row_at_a_time_equals_scikit_learn_on_real_records(tiny_run, fixture_days):
    columns = to_columns(r for d in fixture_days for r in d.records)
    model = tiny_run.model
    features = model.encoder.transform(columns.complaint_types, columns.latitudes, columns.longitudes, columns.created)
    rows = features[:: len(features) // 300]  # a spread of rows, some missing coordinates or type stats
    no_place = np.isnan(rows[:, COLUMN["latitude"]])  # every row misses some type statistic (short windows)
    assert no_place.sum() > 5 and (~no_place).sum() > 10
    expected = np.column_stack([e.predict(rows) for e in model.estimators])
    one_by_one = np.vstack([model.compiled.predict(row[None, :]) for row in rows])
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.compiled.predict(rows), expected, rtol=1e-9, atol=1e-9)


def test_a_split_of_missing_values_from_all_others_walks_as_scikit_learn_does():
    # scikit-learn splits "missing" from "any value" at an infinite threshold; left infinite, such a
    # key breaks the sorted order the walk searches, and rows of the next feature go astray.
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 10, size=(2000, 3))
    features[rng.random(2000) < 0.3, 0] = np.nan
    target = np.where(np.isnan(features[:, 0]), 50.0, 0.0) + features[:, 1] * 3 - features[:, 2]
    estimators = [fitted(features, target), fitted(features, target, loss="quantile", quantile=0.9)]
    thresholds = [
        p[0].nodes["num_threshold"][~p[0].nodes["is_leaf"].astype(bool)] for e in estimators for p in e._predictors
    ]
    assert np.isinf(np.concatenate(thresholds)).any(), "the fit should split missing values from the rest"
    forest = CompiledForest.from_estimators(estimators, 3)
    expected = np.column_stack([e.predict(features) for e in estimators])
    np.testing.assert_allclose(forest.predict(features), expected, rtol=1e-9, atol=1e-9)
    one_by_one = np.vstack([forest.predict(row[None, :]) for row in features[:200]])
    np.testing.assert_allclose(one_by_one, expected[:200], rtol=1e-9, atol=1e-9)


def test_trees_of_more_than_64_leaves_and_estimators_of_unequal_sizes_predict_as_scikit_learn():
    # A tree's reachable leaves take several 64-bit words past 64 leaves; estimators own blocks of trees.
    rng = np.random.default_rng(2)
    features = rng.uniform(-50, 50, size=(3000, 4))
    features[rng.random(features.shape) < 0.1] = np.nan
    target = np.sin(np.nan_to_num(features[:, 0]) / 5) * 10 + np.nan_to_num(features[:, 1]) + rng.normal(0, 1, 3000)
    estimators = [
        HistGradientBoostingRegressor(max_iter=7, max_leaf_nodes=150, min_samples_leaf=5, random_state=0).fit(
            features, target
        ),
        HistGradientBoostingRegressor(max_iter=3, max_depth=2, random_state=0).fit(features, target),
    ]
    assert max(p[0].nodes["is_leaf"].sum() for p in estimators[0]._predictors) > 128  # three words
    forest = CompiledForest.from_estimators(estimators, 4)
    expected = np.column_stack([e.predict(features) for e in estimators])
    np.testing.assert_allclose(forest.predict(features), expected, rtol=1e-9, atol=1e-9)
    one_by_one = np.vstack([forest.predict_row(row) for row in features[:300]])
    np.testing.assert_allclose(one_by_one, expected[:300], rtol=1e-9, atol=1e-9)
    assert forest.predict(features[:0]).shape == (0, 2)


def test_a_threshold_beyond_the_feature_limit_is_refused_at_compile_time():
    rng = np.random.default_rng(1)
    features = np.column_stack([rng.uniform(0, 1, 500), rng.uniform(0, 2 * FEATURE_LIMIT, 500)])
    target = (features[:, 1] > 1.5 * FEATURE_LIMIT) * 10.0 + features[:, 0]
    with pytest.raises(ValueError, match=r"feature 1 splits at .* outside the \+-400000"):
        CompiledForest.from_estimators([fitted(features, target)], 2)


def test_a_bundle_with_infinite_keys_loads_with_them_made_finite():
    # Bundles compiled before the check stored the infinite keys as they were.
    forest = CompiledForest(
        {
            "children": np.array([1, 2, 1, 1, 2, 2]),
            "value": np.array([0.0, 1.0, 2.0]),
            "roots": np.array([0]),
            "block_sizes": np.array([1, 0]),
            "feature_shift": np.array([0.0, 1e6]),
            "split_keys": np.array([np.inf]),
            "missing_right": np.array([True]),
            "tree_blocks": np.array([0]),
            "baseline": np.array([0.5]),
        },
        depth=1,
    )
    assert forest.split_keys.tolist() == [FEATURE_LIMIT]
    rows = np.array([[3.0, 0.0], [np.nan, 0.0], [1e9, 0.0]])  # any value goes left, a missing one right
    assert forest.predict(rows)[:, 0].tolist() == [1.5, 2.5, 1.5]
    assert forest.predict(rows[1:2])[:, 0].tolist() == [2.5]


def test_values_beyond_the_feature_limit_infinite_or_missing_predict_as_scikit_learn():
    # Such a value is bounded to its own feature's rows after the search (missing: the feature's own
    # missing row; far below: the row -FEATURE_LIMIT is found at), one row at a time and in a batch.
    rng = np.random.default_rng(3)
    features = rng.uniform(-100, 100, size=(3000, 3))
    features[rng.random(features.shape) < 0.1] = np.nan
    target = (
        np.nan_to_num(features[:, 0]) * 2
        + np.where(np.isnan(features[:, 1]), 30.0, features[:, 1])
        - np.abs(np.nan_to_num(features[:, 2]))
    )
    estimators = [fitted(features, target)]
    forest = CompiledForest.from_estimators(estimators, 3)
    rows = rng.uniform(-100, 100, size=(400, 3))
    extremes = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 2 * FEATURE_LIMIT, -2 * FEATURE_LIMIT, -FEATURE_LIMIT])
    mask = rng.random(rows.shape) < 0.4
    rows[mask] = rng.choice(extremes, size=mask.sum())
    expected = estimators[0].predict(rows)[:, None]
    np.testing.assert_allclose(forest.predict(rows), expected, rtol=1e-9, atol=1e-9)
    one_by_one = np.vstack([forest.predict_row(row) for row in rows])
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-9, atol=1e-9)
