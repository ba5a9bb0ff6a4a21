"""The MAE-PO oracle is the best per-type constant under MAE-PO, as the MAE-hinge one is under MAE-hinge."""

import numpy as np

from eta311.model.dataset import Columns
from eta311.model.evaluation import po_oracle_predictions, pseudo_targets


def test_the_mae_po_oracle_is_the_best_constant_under_mae_po():
    rng = np.random.default_rng(3)
    n = 300
    hours, follow_up = rng.exponential(20, n), rng.uniform(5, 60, n)
    closed = hours <= follow_up
    created = np.full(n, np.datetime64("2019-05-01T00:00", "ms"))
    pulled = created + (follow_up * 3.6e6).astype("timedelta64[ms]")
    test = Columns(["a"] * n, np.zeros(n), np.zeros(n), created, np.where(closed, hours, np.nan), pulled)
    target, weight = pseudo_targets(test)
    best = po_oracle_predictions(test, target, weight)[0]
    loss = lambda c: (weight * np.abs(target - c)).sum() / weight.sum()  # noqa: E731
    assert loss(best) <= min(loss(c) for c in np.linspace(0, 80, 801)) + 1e-9
