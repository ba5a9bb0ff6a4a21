"""Right-censored resolution times: Kaplan-Meier quantiles, censoring weights, and censoring-aware scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def km_curve(time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival S(t) just after each distinct time, as (times, survival).

    With weights, each request counts by its weight in the risk set and among the closures: a
    recency weight then lets recent requests set the hazard wherever they were followed long
    enough, while at long durations only the older requests are at risk and set it alone.
    """
    times, closures, at_risk = risk_table(time, event, weights)
    return times, np.cumprod(1.0 - closures / at_risk)


def risk_table(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct times, weighted closures at each, weighted requests still at risk just before each)."""
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order].astype(np.float64)
    w = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)[order]
    times, first = np.unique(t, return_index=True)
    if not len(t):
        return times, e, e
    return times, np.add.reduceat(w * e, first), np.cumsum(np.add.reduceat(w, first)[::-1])[::-1]


def km_quantiles(
    time: np.ndarray, event: np.ndarray, qs: Sequence[float], weights: np.ndarray | None = None
) -> np.ndarray:
    """The q-quantiles of T under Kaplan-Meier; where S never falls to 1-q, the longest time seen.

    That fallback is a lower bound (the quantile lies beyond every follow-up), the honest answer
    for a type whose requests mostly stay open longer than anyone has waited.
    """
    if len(time) == 0:
        return np.full(len(qs), np.nan)
    times, survival = km_curve(time, event, weights)
    out = np.empty(len(qs))
    for k, q in enumerate(qs):
        reached = np.flatnonzero(survival <= 1.0 - q + 1e-12)
        out[k] = times[reached[0]] if len(reached) else times[-1]
    return out


def censoring_survival(censor_hours: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """G(t) = P(C > t), from every request's known censoring time (administrative censoring)."""
    ordered = np.sort(censor_hours)

    def survival(t: np.ndarray) -> np.ndarray:
        return 1.0 - np.searchsorted(ordered, t, side="left") / max(len(ordered), 1)

    return survival


def ipcw_weights(hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """1/G(T) on closed requests, 0 on open ones: a weighted loss on closed rows then stands for all.

    A long resolution is observed only on requests old enough to show it; the weight counts each
    closed one for the open ones of its length. G is floored so a few rare long times cannot dominate.
    """
    survival = censoring_survival(censor_hours)
    weights = np.zeros(len(hours))
    weights[closed] = 1.0 / np.maximum(survival(hours[closed]), floor)
    return weights


def hinge_errors(estimate: np.ndarray, hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray) -> np.ndarray:
    """MAE-hinge per request: |T - estimate| when closed; max(0, c - estimate) while still open at c."""
    return np.where(closed, np.abs(hours - estimate), np.maximum(0.0, censor_hours - estimate))


def observed_time(hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray) -> np.ndarray:
    """What is known of T: the time itself when closed, the follow-up c when still open."""
    return np.where(closed, hours, censor_hours)


def oracle_constant(hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray) -> float:
    """The constant with the least MAE-hinge on these requests (the best answer in hindsight).

    The loss is piecewise linear in the constant with breakpoints at the observed times, so the
    minimum is at one of them: where the closed rows above plus the open rows above stop
    outnumbering the closed rows below.
    """
    observed = observed_time(hours, closed, censor_hours)
    candidates = np.unique(observed)
    closed_times = np.sort(hours[closed])
    open_times = np.sort(censor_hours[~closed])
    closed_prefix = np.concatenate([[0.0], np.cumsum(closed_times)])
    open_prefix = np.concatenate([[0.0], np.cumsum(open_times)])
    below = np.searchsorted(closed_times, candidates, side="right")
    loss = candidates * below - closed_prefix[below]
    loss += (closed_prefix[-1] - closed_prefix[below]) - candidates * (len(closed_times) - below)
    open_below = np.searchsorted(open_times, candidates, side="right")
    loss += (open_prefix[-1] - open_prefix[open_below]) - candidates * (len(open_times) - open_below)
    return float(candidates[np.argmin(loss)])


def coverage_bounds(
    low: np.ndarray, high: np.ndarray, hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray
) -> tuple[float, float]:
    """Share of requests inside [low, high]: (surely covered, not surely missed).

    A closed request is covered or not. An open one is surely missed once high < c (it is still
    open past the interval); otherwise it may yet close inside, so it counts only in the upper bound.
    """
    n = max(len(hours), 1)
    covered = closed & (hours >= low) & (hours <= high)
    undetermined = ~closed & (high >= censor_hours)
    return float(covered.sum() / n), float((covered.sum() + undetermined.sum()) / n)


def impute_open(
    complaint_types: Sequence[str], hours: np.ndarray, closed: np.ndarray, censor_hours: np.ndarray
) -> np.ndarray:
    """Closed: T. Open at c: its type's Kaplan-Meier median of T given T > c (S(t) = S(c) / 2).

    Where the type's curve never halves past c, the longest time seen (at least c): a lower bound,
    which is all the data can say. This keeps every open request in training with what it tells:
    that it is slow, and how slow requests of its type that outlived c turned out.
    """
    types = np.asarray(complaint_types, dtype=object)
    observed = observed_time(hours, closed, censor_hours)
    target = observed.copy()
    order = np.argsort(types, kind="stable")
    _, starts = np.unique(types[order], return_index=True)
    for rows in np.split(order, starts[1:]):
        still_open = rows[~closed[rows]]
        if not len(still_open):
            continue
        times, survival = km_curve(observed[rows], closed[rows])
        at = np.searchsorted(times, censor_hours[still_open], side="right") - 1
        half = np.where(at >= 0, survival[np.maximum(at, 0)], 1.0) / 2.0
        reached = np.searchsorted(-survival, -half, side="left")  # first time with S(t) <= S(c) / 2
        beyond = np.maximum(times[-1], censor_hours[still_open])
        imputed = np.where(reached < len(times), times[np.minimum(reached, len(times) - 1)], beyond)
        target[still_open] = np.maximum(imputed, censor_hours[still_open])
    return target


def restricted_mean(times: np.ndarray, survival: np.ndarray) -> float:
    """Area under the Kaplan-Meier step curve from 0 to the last time seen: the mean of T, capped there."""
    before = np.concatenate([[1.0], survival[:-1]])
    return float(np.sum(before * np.diff(np.concatenate([[0.0], times]))))


def pseudo_observations(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight) per request for MAE-PO (Qi et al., 2023): closed, its time with weight 1;
    open at c, the jackknife pseudo-observation of its time, n*mean - (n-1)*mean without it (at
    least c), weighted by 1 - S(c), the chance it would have closed by then had it been a typical one.

    The leave-one-out curve of an open request differs only in the risk sets up to c, so each is
    one cumulative product over the distinct times.
    """
    n = len(time)
    target, weight = time.astype(np.float64).copy(), np.ones(n)
    if n < 2:
        weight[~event] = 0.0  # a lone open request: its curve never falls, S(c) = 1, it says nothing
    if n < 2 or event.all():
        return target, weight
    times, closures, at_risk = risk_table(time, event)
    survival = np.cumprod(1.0 - closures / at_risk)
    mean = restricted_mean(times, survival)
    for i in np.flatnonzero(~event):
        fewer = at_risk - (times <= time[i])
        hazard = np.divide(closures, fewer, out=np.zeros_like(closures), where=fewer > 0)
        without = restricted_mean(times, np.cumprod(1.0 - hazard))
        target[i] = max(n * mean - (n - 1) * without, time[i])
        weight[i] = 1.0 - survival[np.searchsorted(times, time[i], side="right") - 1]
    return target, weight
