"""Reproduce the seed's 100-tree random forest on noise complaints and score it beside our model (MAE-hinge)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model.evaluation import is_noise  # noqa: E402
from eta311.model.features import date_features  # noqa: E402
from eta311.model.survival import hinge_errors  # noqa: E402
from eta311.model.training import Boosting, read_days, train_on_days  # noqa: E402
from eta311.storage import open_store  # noqa: E402


def seed_features(cols, noise_types):
    one_hot = np.array([[t == n for n in noise_types] for t in cols.complaint_types], dtype=float)
    return np.column_stack(
        [np.nan_to_num(cols.latitudes), np.nan_to_num(cols.longitudes), date_features(cols.created), one_hot]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/nyc311")
    parser.add_argument("--holdout-days", type=int, default=30)
    parser.add_argument("--max-iter", type=int, default=Boosting.max_iter)
    args = parser.parse_args()
    from sklearn.ensemble import RandomForestRegressor

    days = read_days(open_store(args.data), progress=lambda _: None)
    # Our model exactly as make train evaluates it: fitted before the held-out days.
    run = train_on_days(days, args.holdout_days, Boosting(max_iter=args.max_iter), progress=lambda _: None)
    train, test = run.train, run.test
    # The seed's way: closed requests only, raw hours, its own features.
    seed_train = train.subset(train.closed & is_noise(train.complaint_types))
    noise = is_noise(test.complaint_types)
    noise_types = sorted(set(seed_train.complaint_types))
    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1)
    forest.fit(seed_features(seed_train, noise_types), seed_train.hours)
    held = test.subset(noise)
    seed = hinge_errors(forest.predict(seed_features(held, noise_types)), held.hours, held.closed, held.censor_hours)
    ours = run.card["metrics"]["noise"]["mae_hinge"]["model"]
    print(
        f"noise complaints, {len(held):,} held-out requests ({int((~held.closed).sum())} open): MAE-hinge"
        f" seed random forest {seed.mean():.2f} h, our model {ours:.2f} h"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
