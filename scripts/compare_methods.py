"""How open requests enter training, compared on make train's held-out requests (MAE-hinge of the median fit).

Prints one line per method: closed requests only; closed ones weighted 1/G(T) (inverse probability
of censoring); every request, the open ones imputed from their type's Kaplan-Meier curve (the
model's method); each with the 90-day Kaplan-Meier offset, and the last also with the 30-day one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model import type_stats  # noqa: E402
from eta311.model.dataset import columns_of_days, usable  # noqa: E402
from eta311.model.estimator import log_offsets  # noqa: E402
from eta311.model.evaluation import is_noise  # noqa: E402
from eta311.model.features import COLUMN, FeatureEncoder  # noqa: E402
from eta311.model.survival import hinge_errors, impute_open, ipcw_weights  # noqa: E402
from eta311.model.training import Boosting, read_days, split_by_date  # noqa: E402
from eta311.storage import open_store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/nyc311")
    parser.add_argument("--holdout-days", type=int, default=30)
    parser.add_argument("--max-iter", type=int, default=60)
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingRegressor

    columns = usable(columns_of_days(d.records for d in read_days(open_store(args.data), progress=lambda _: None)))
    stats = type_stats.rolling(columns.complaint_types, columns.created, columns.hours, columns.pulled)
    features = FeatureEncoder({}).transform(
        columns.complaint_types, columns.latitudes, columns.longitudes, columns.created
    )
    features[:, : len(type_stats.STAT_NAMES)] = stats
    train, test = split_by_date(columns, args.holdout_days)
    rows = columns.subset(train)
    global_log = float(np.log1p(np.median(rows.hours[rows.closed])))
    offset_90 = log_offsets(features, global_log)
    short = features[:, COLUMN["log_km_median_30d"]]
    offset_30 = np.where(np.isnan(short), offset_90, short)
    closed_only = np.where(columns.closed, 1.0, 0.0)
    ipcw = ipcw_weights(columns.hours, columns.closed, columns.censor_hours)
    imputed = np.full(len(columns), np.nan)
    imputed[train] = impute_open(rows.complaint_types, rows.hours, rows.closed, rows.censor_hours)
    methods = [
        ("closed requests only", np.where(columns.closed, columns.hours, np.nan), closed_only, offset_90),
        ("closed requests, weights 1/G(T)", np.where(columns.closed, columns.hours, np.nan), ipcw, offset_90),
        ("every request, open ones Kaplan-Meier imputed (the model)", imputed, np.ones(len(columns)), offset_90),
        ("the same, offset from the 30-day median", imputed, np.ones(len(columns)), offset_30),
    ]
    held = columns.subset(test)
    noise = is_noise(held.complaint_types)
    print(f"{test.sum():,} held-out requests, {int((~held.closed).sum()):,} open; {args.max_iter} rounds, median fit")
    for name, hours, weight, offset in methods:
        fit = train & (weight > 0)
        model = HistGradientBoostingRegressor(
            loss="quantile", quantile=0.5, **Boosting(max_iter=args.max_iter).params()
        )
        model.fit(features[fit], np.log1p(hours[fit]) - offset[fit], sample_weight=weight[fit])
        estimate = np.expm1(model.predict(features[test]) + offset[test])
        errors = hinge_errors(estimate, held.hours, held.closed, held.censor_hours)
        print(f"MAE-hinge {errors.mean():7.2f} h, noise {errors[noise].mean():6.2f} h: {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
