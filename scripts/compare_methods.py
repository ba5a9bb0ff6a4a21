"""The choices behind the model, each compared on held-out requests: how open requests enter training,
the recency half-life of the starting point, how the interval is made, and the statistics' maturity lag.

1. How open requests enter training (MAE-hinge of the median fit on make train's held-out requests):
   closed requests only; closed ones weighted 1/G(T) (inverse probability of censoring); every
   request, the open ones imputed from their type's Kaplan-Meier curve (the model's method).
2. The starting point's half-life, chosen without the held-out days or the card's backtest weeks:
   on the three mature weeks before those (training.backtest_folds), each fitted on the days before
   it with what was known then. The longest half-life within one standard error (over days) of the
   best is kept (the one-standard-error rule: the smoother of near ties). The held-out figures are
   printed after the choice, for the record only.
3. The interval: a median plus a conformal margin (the model) against 10% and 90% regressors
   widened the same way, both calibrated on alternate held-out requests and measured on the others.
4. The statistics' maturity lag (requests younger than it at publication left out), chosen on the
   same mature weeks as part 2: the shortest lag within one standard error of the best is kept, since
   no lag is the freshest and the simplest. The held-out figures are printed after the choice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model import type_stats  # noqa: E402
from eta311.model.dataset import Columns, columns_of_days, usable  # noqa: E402
from eta311.model.estimator import log_offsets  # noqa: E402
from eta311.model.evaluation import is_noise  # noqa: E402
from eta311.model.features import FeatureEncoder  # noqa: E402
from eta311.model.survival import coverage_bounds, hinge_errors, impute_open, ipcw_weights  # noqa: E402
from eta311.model.training import (  # noqa: E402
    BACKTEST_WEEKS,
    Boosting,
    backtest_folds,
    calibration_split,
    margin_for_coverage,
    read_days,
    split_by_date,
)
from eta311.storage import open_store  # noqa: E402

HALF_LIVES = (None, 7, 14, 30, 60)
MATURITY_LAGS = (0, 1, 2, 3)


def fit_predict(features, target, weight, fit, score, max_iter: int, quantile: float = 0.5) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(loss="quantile", quantile=quantile, **Boosting(max_iter=max_iter).params())
    # Unit weights are left out, not passed: scikit-learn starts a weighted quantile fit from a
    # weighted percentile, which moves the whole fit, and the model is fitted without weights.
    weights = None if (weight[fit] == 1.0).all() else weight[fit]
    model.fit(features[fit], target[fit], sample_weight=weights)
    return model.predict(features[score])


def feature_matrix(columns: Columns, half_life: int | None, lag_days: int = type_stats.MATURITY_LAG_DAYS) -> np.ndarray:
    first = type_stats.STAT_SPECS[0]
    specs = ((first[0], first[1], first[2], half_life),) + type_stats.STAT_SPECS[1:]
    features = FeatureEncoder({}).transform(
        columns.complaint_types, columns.latitudes, columns.longitudes, columns.created
    )
    features[:, : len(specs)] = type_stats.rolling(
        columns.complaint_types, columns.created, columns.hours, columns.pulled, specs, lag_days
    )
    return features


def hinge(estimate: np.ndarray, rows: Columns) -> np.ndarray:
    return hinge_errors(estimate, rows.hours, rows.closed, rows.censor_hours)


def within_one_standard_error(validation: dict, fold_days: np.ndarray) -> tuple[object, list]:
    """The best choice by mean error over the folds, and every choice within one standard error of it."""
    best = min(validation, key=lambda choice: validation[choice].mean())
    within = []
    for choice, errors in validation.items():
        # Requests of one day share its weather, staffing and backlog: the standard error is over days.
        by_day = [(errors - validation[best])[fold_days == d].mean() for d in np.unique(fold_days)]
        if np.mean(by_day) <= np.std(by_day, ddof=1) / np.sqrt(len(by_day)):
            within.append(choice)
    return best, within


OUTPUT: list[str] = []


def say(text: str) -> None:
    print(text)
    OUTPUT.append(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/nyc311")
    parser.add_argument("--holdout-days", type=int, default=30)
    parser.add_argument("--max-iter", type=int, default=Boosting.max_iter)
    parser.add_argument(
        "--out", default="models/compare_methods.txt", help="also write what is printed here (the README quotes it)"
    )
    args = parser.parse_args()

    columns = usable(columns_of_days(d.records for d in read_days(open_store(args.data), progress=lambda _: None)))
    train, test = split_by_date(columns, args.holdout_days)
    days = columns.created.astype("datetime64[D]")
    held = columns.subset(test)
    noise = is_noise(held.complaint_types)
    global_log = float(np.log1p(np.median(columns.hours[train & columns.closed])))
    everyone = np.ones(len(columns))

    def imputed_target(before: np.ndarray) -> np.ndarray:
        """log1p of every request's training target, as known on the first day after `before`."""
        cut = (days[before].max() + np.timedelta64(1, "D")).astype("datetime64[ms]")
        rows = columns.subset(before).known_at(cut)
        target = np.full(len(columns), np.nan)
        target[before] = np.log1p(impute_open(rows.complaint_types, rows.hours, rows.closed, rows.censor_hours))
        return target

    train_target = imputed_target(train)
    features = feature_matrix(columns, type_stats.HALF_LIFE_DAYS)
    offset = log_offsets(features, global_log)
    say(f"{test.sum():,} held-out requests, {int((~held.closed).sum()):,} open; {args.max_iter} rounds, median fit")

    say("\n1. how open requests enter training (held-out MAE-hinge, hours)")
    closed_hours = np.log1p(np.where(columns.closed, columns.hours, np.nan))
    methods = [
        ("closed requests only", closed_hours, np.where(columns.closed, 1.0, 0.0)),
        (
            "closed requests, weights 1/G(T)",
            closed_hours,
            ipcw_weights(columns.hours, columns.closed, columns.censor_hours),
        ),
        ("every request, open ones Kaplan-Meier imputed (the model)", train_target, everyone),
    ]
    for name, target, weight in methods:
        fit = train & (weight > 0)
        estimate = np.expm1(fit_predict(features, target - offset, weight, fit, test, args.max_iter) + offset[test])
        errors = hinge(estimate, held)
        say(f"   MAE-hinge {errors.mean():7.2f}, noise {errors[noise].mean():6.2f}: {name}")

    # Choose on the three mature weeks before the card's backtest weeks, so the backtests stay out of sample too.
    folds = backtest_folds(columns, days[test].min(), 2 * BACKTEST_WEEKS)[BACKTEST_WEEKS:]
    names = [f"{days[f].min()}..{days[f].max()}" for f in folds]
    say(f"\n2. half-life of the starting point, chosen on the mature weeks {', '.join(names)} (MAE-hinge, hours)")
    # The targets depend on the fold, not on the statistics: worked out once per fold.
    fold_targets = [imputed_target(days < days[fold].min()) for fold in folds]
    fold_days = np.concatenate([days[f] for f in folds])

    def validate(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Errors on the mature weeks (each fitted on the days before it), on the held-out days, per week."""
        errors = []
        for fold, target in zip(folds, fold_targets):
            before = days < days[fold].min()
            start = log_offsets(matrix, float(np.nanmedian(target[before])))  # only types with no statistics
            estimate = fit_predict(matrix, target - start, everyone, before, fold, args.max_iter)
            errors.append(hinge(np.expm1(estimate + start[fold]), columns.subset(fold)))
        start = log_offsets(matrix, global_log)
        estimate = fit_predict(matrix, train_target - start, everyone, train, test, args.max_iter)
        return np.concatenate(errors), hinge(np.expm1(estimate + start[test]), held), errors

    def for_the_record(heldout: dict, label) -> str:
        return "   held-out days, for the record (not used to choose): " + ", ".join(
            f"{label(c)}: {e.mean():.2f} (noise {e[noise].mean():.2f})" for c, e in heldout.items()
        )

    validation, heldout = {}, {}
    for half_life in HALF_LIVES:
        validation[half_life], heldout[half_life], errors = validate(feature_matrix(columns, half_life))
        per_fold = "  ".join(f"{e.mean():6.2f}" for e in errors)
        label = "no weight" if half_life is None else f"{half_life} days"
        say(f"   {label:>9}: per week {per_fold}   all {validation[half_life].mean():6.2f}")
    best, within = within_one_standard_error(validation, fold_days)
    chosen = max(within, key=lambda h: np.inf if h is None else h)
    say(f"   best {best}; within one standard error (over days): {within}; kept: {chosen}")
    say(for_the_record(heldout, lambda h: "none" if h is None else h))

    say("\n3. the interval: calibrated on alternate held-out requests, measured on the others")
    target = train_target - offset
    calibrating, measuring = calibration_split(held)
    centre = fit_predict(features, target, everyone, train, test, args.max_iter) + offset[test]
    low = fit_predict(features, target, everyone, train, test, args.max_iter, 0.1) + offset[test]
    high = fit_predict(features, target, everyone, train, test, args.max_iter, 0.9) + offset[test]
    for name, lower, upper in (("median +- margin (the model)", centre, centre), ("10% and 90% regressors", low, high)):
        lower, upper = np.minimum(lower, centre), np.maximum(upper, centre)

        part = held.subset(calibrating)
        hi = margin_for_coverage(lower[calibrating], upper[calibrating], part)
        part = held.subset(measuring)
        bounds = coverage_bounds(
            np.expm1(lower[measuring] - hi), np.expm1(upper[measuring] + hi), part.hours, part.closed, part.censor_hours
        )
        width = (upper + hi) - (lower - hi)
        say(
            f"   {name}: margin {hi:.3f} log hours, coverage {bounds[0]:.3f}..{bounds[1]:.3f}, "
            f"mean width {width[measuring].mean():.3f} log hours (high/low x{np.exp(np.median(width[measuring])):.0f} median)"
        )

    say("\n4. maturity lag of the statistics, chosen on the same mature weeks (MAE-hinge, hours)")
    validation, heldout = {}, {}
    for lag in MATURITY_LAGS:
        matrix = feature_matrix(columns, type_stats.HALF_LIFE_DAYS, lag)
        validation[lag], heldout[lag], errors = validate(matrix)
        per_fold = "  ".join(f"{e.mean():6.2f}" for e in errors)
        say(f"   {lag} day{'' if lag == 1 else 's'}: per week {per_fold}   all {validation[lag].mean():6.2f}")
    best, within = within_one_standard_error(validation, fold_days)
    say(f"   best {best}; within one standard error (over days): {within}; kept: {min(within)}")
    say(for_the_record(heldout, lambda lag: f"{lag} day{'' if lag == 1 else 's'}"))
    Path(args.out).write_text("\n".join(OUTPUT) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
