"""Censoring-aware pieces against hand-worked cases: Kaplan-Meier, MAE-hinge, the oracle, coverage bounds, imputation."""

import numpy as np
import pytest

from eta311.model import survival


def test_kaplan_meier_without_censoring_is_the_empirical_quantile():
    times = np.array([1.0, 2.0, 3.0, 4.0])
    assert list(survival.km_quantiles(times, np.ones(4, bool), [0.25, 0.5, 1.0])) == [1.0, 2.0, 4.0]


def test_kaplan_meier_counts_open_requests_as_at_risk():
    # closed at 1 and 3; open at 2 and 4: S(1) = 3/4, S(3) = 3/4 * 1/2 = 3/8
    times, curve = survival.km_curve(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, False]))
    assert list(times) == [1.0, 2.0, 3.0, 4.0] and curve == pytest.approx([0.75, 0.75, 0.375, 0.375])
    assert survival.km_quantiles(times, np.array([True, False, True, False]), [0.5])[0] == 3.0
    # median beyond every follow-up: the longest time seen, a lower bound
    assert survival.km_quantiles(np.array([5.0, 9.0]), np.array([True, False]), [0.9])[0] == 9.0


def test_hinge_only_penalises_an_open_request_for_stopping_short():
    errors = survival.hinge_errors(
        np.array([10.0, 10.0, 30.0]),
        np.array([4.0, np.nan, np.nan]),
        np.array([True, False, False]),
        np.array([50.0, 20.0, 20.0]),
    )
    assert list(errors) == [6.0, 10.0, 0.0]


def test_oracle_constant_is_the_best_constant():
    rng = np.random.default_rng(0)
    hours = rng.exponential(10, 200)
    censor = rng.uniform(0, 40, 200)
    closed = hours <= censor
    hours = np.where(closed, hours, np.nan)
    best = survival.oracle_constant(hours, closed, censor)
    loss = lambda c: survival.hinge_errors(np.full(200, c), hours, closed, censor).mean()  # noqa: E731
    grid = np.linspace(0, 60, 601)
    assert loss(best) <= min(loss(c) for c in grid) + 1e-9


def test_coverage_bounds_count_open_requests_only_when_not_surely_missed():
    low, high = np.full(4, 2.0), np.full(4, 10.0)
    hours = np.array([5.0, 20.0, np.nan, np.nan])
    closed = np.array([True, True, False, False])
    censor = np.array([30.0, 30.0, 8.0, 12.0])  # open at 8 h may still close by 10; open at 12 h has missed
    assert survival.coverage_bounds(low, high, hours, closed, censor) == (0.25, 0.5)


def test_open_requests_are_imputed_beyond_their_follow_up():
    types = ["a"] * 6
    hours = np.array([1.0, 2.0, 10.0, 20.0, np.nan, np.nan])
    closed = ~np.isnan(hours)
    censor = np.array([50.0, 50.0, 50.0, 50.0, 5.0, 30.0])
    target = survival.impute_open(types, hours, closed, censor)
    assert list(target[:4]) == [1.0, 2.0, 10.0, 20.0]
    assert target[4] == 20.0  # beyond 5 h: closures at 10 and 20, one still open at 30 -> median 20
    assert target[5] == 30.0  # nothing closed beyond 30 h: the longest time seen, a lower bound


def test_weights_count_in_the_risk_set_and_equal_weights_change_nothing():
    times = np.array([1.0, 2.0, 3.0, 4.0])
    closed = np.array([True, False, True, False])
    plain = survival.km_curve(times, closed)
    doubled = survival.km_curve(times, closed, np.full(4, 2.0))
    assert np.array_equal(plain[0], doubled[0]) and np.allclose(plain[1], doubled[1])
    # the request closed at 1 h weighs 3: S(1) = 1 - 3/6, then S(3) = 1/2 * (1 - 1/2)
    _, weighted = survival.km_curve(times, closed, np.array([3.0, 1.0, 1.0, 1.0]))
    assert weighted == pytest.approx([0.5, 0.5, 0.25, 0.25])
    # an old slow closure barely moves the median when it weighs almost nothing
    quick = survival.km_quantiles(np.array([1.0, 2.0, 100.0]), np.ones(3, bool), [0.5], np.array([1.0, 1.0, 1e-6]))
    assert quick[0] == 2.0


def jackknife_by_brute_force(time: np.ndarray, closed: np.ndarray, i: int) -> float:
    def mean(t: np.ndarray, e: np.ndarray) -> float:
        times, curve = survival.km_curve(t, e)
        if times[-1] < time.max():  # the same horizon as the whole sample's curve
            times, curve = np.append(times, time.max()), np.append(curve, curve[-1])
        return survival.restricted_mean(times, curve)

    keep = np.arange(len(time)) != i
    return len(time) * mean(time, closed) - (len(time) - 1) * mean(time[keep], closed[keep])


def test_pseudo_observations_are_the_jackknife_of_the_kaplan_meier_mean():
    rng = np.random.default_rng(1)
    hours, censor = rng.exponential(10, 60), rng.uniform(0, 25, 60)
    closed = hours <= censor
    time = np.minimum(hours, censor)
    target, weight = survival.pseudo_observations(time, closed)
    assert (target[closed] == time[closed]).all() and (weight[closed] == 1.0).all()
    times, curve = survival.km_curve(time, closed)
    for i in np.flatnonzero(~closed):
        assert target[i] == pytest.approx(max(jackknife_by_brute_force(time, closed, i), time[i]))
        assert target[i] >= time[i]  # what is known: it outlived its follow-up
        assert weight[i] == pytest.approx(1.0 - curve[np.searchsorted(times, time[i], side="right") - 1])
    # all closed: every request counts by its own time
    assert list(survival.pseudo_observations(np.array([1.0, 5.0]), np.ones(2, bool))[0]) == [1.0, 5.0]


def test_restricted_mean_is_the_area_under_the_steps():
    # S = 1 until 2, 0.5 until 4, 0.25 until 6: 2*1 + 2*0.5 + 2*0.25
    assert survival.restricted_mean(np.array([2.0, 4.0, 6.0]), np.array([0.5, 0.25, 0.25])) == 3.5


def test_a_lone_open_request_carries_no_weight_in_mae_po():
    target, weight = survival.pseudo_observations(np.array([30.0]), np.array([False]))
    assert list(weight) == [0.0]
