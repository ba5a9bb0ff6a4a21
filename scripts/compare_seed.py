"""Reproduce the seed's 100-tree random forest on noise complaints and score it beside our model."""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model.dataset import resolved, to_columns  # noqa: E402
from eta311.model.features import date_features  # noqa: E402
from eta311.model.training import mae, mature_days, read_days, split_by_date  # noqa: E402
from eta311.storage import open_store  # noqa: E402


def seed_features(cols, noise_types):
    one_hot = np.array([[t == n for n in noise_types] for t in cols.complaint_types], dtype=float)
    return np.column_stack(
        [np.nan_to_num(cols.latitudes), np.nan_to_num(cols.longitudes), date_features(cols.created), one_hot]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/nyc311")
    parser.add_argument("--models", default="models")
    parser.add_argument("--holdout-days", type=int, default=30)
    args = parser.parse_args()
    from sklearn.ensemble import RandomForestRegressor

    usable, _ = mature_days(read_days(open_store(args.data), progress=lambda _: None))
    train, test = split_by_date(resolved(to_columns(r for d in usable for r in d.records)), args.holdout_days)
    is_noise = lambda c: np.array(["noise" in t for t in c.complaint_types])  # noqa: E731
    train, test = train.subset(is_noise(train)), test.subset(is_noise(test))
    noise_types = sorted(set(train.complaint_types))
    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1)
    forest.fit(seed_features(train, noise_types), train.hours)
    seed_mae = mae(forest.predict(seed_features(test, noise_types)), test.hours)

    store = open_store(args.models)
    card = json.loads(store.get("model_card.json"))
    model = pickle.loads(store.get(card["artifact"]["name"]))
    ours = model.predict_matrix(
        model.encoder.transform(test.complaint_types, test.latitudes, test.longitudes, test.created)
    )[:, 1]
    print(
        f"noise complaints, held-out {len(test)} rows: seed random forest MAE {seed_mae:.2f} h,"
        f" {card['version']} MAE {mae(ours, test.hours):.2f} h (forest pickled {len(pickle.dumps(forest)) / 1e6:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
