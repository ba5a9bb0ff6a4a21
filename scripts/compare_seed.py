"""Reproduce the seed's 100-tree random forest on noise complaints and score it beside our model (MAE-hinge),
on make train's held-out days and on its backtest weeks, each fitted on the days before."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model.dataset import columns_of_days, usable  # noqa: E402
from eta311.model.evaluation import is_noise  # noqa: E402
from eta311.model.features import date_features  # noqa: E402
from eta311.model.survival import hinge_errors  # noqa: E402
from eta311.model.training import Boosting, backtest_folds, read_days, train_on_days  # noqa: E402
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
    parser.add_argument(
        "--out", default="models/compare_seed.txt", help="also write what is printed here (the README quotes it)"
    )
    args = parser.parse_args()
    lines = []
    from sklearn.ensemble import RandomForestRegressor

    days = read_days(open_store(args.data), progress=lambda _: None)
    # Our model exactly as make train evaluates it: fitted before the held-out days.
    run = train_on_days(days, args.holdout_days, Boosting(max_iter=args.max_iter), progress=lambda _: None)
    columns = usable(columns_of_days(d.records for d in days))
    first_held_out = run.test.created.astype("datetime64[D]").min()
    windows = [(run.train, run.test, run.card["metrics"])]
    ours_by_days = {tuple(week["days"]): week for week in run.card["backtests"]}
    for fold in backtest_folds(columns, first_held_out):
        first = columns.created[fold].astype("datetime64[D]").min()
        before = columns.created.astype("datetime64[D]") < first
        held = columns.subset(fold)
        ours = ours_by_days.get(tuple(sorted({str(d) for d in held.created.astype("datetime64[D]")})))
        if ours is not None:  # the seed, like the model, knows only what had closed when the week began
            windows.append((columns.subset(before).known_at(first.astype("datetime64[ms]")), held, ours))
    for train, test, ours in windows:
        # The seed's way: closed requests only, raw hours, its own features.
        seed_train = train.subset(train.closed & is_noise(train.complaint_types))
        noise_types = sorted(set(seed_train.complaint_types))
        forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1)
        forest.fit(seed_features(seed_train, noise_types), seed_train.hours)
        held = test.subset(is_noise(test.complaint_types))
        estimate = forest.predict(seed_features(held, noise_types))
        seed = hinge_errors(estimate, held.hours, held.closed, held.censor_hours)
        days = held.created.astype("datetime64[D]")
        lines.append(
            f"noise complaints of {days.min()}..{days.max()}, {len(held):,} requests ({int((~held.closed).sum())} open):"
            f" MAE-hinge seed random forest {seed.mean():.2f} h, our model {ours['noise']['mae_hinge']['model']:.2f} h"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
