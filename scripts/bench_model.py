"""Benchmark the bundled model in-process: artifact size, load time, predict latency and throughput."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(action, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000, help="timed single-row calls")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the batch")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from eta311.model.artifact import ArtifactRejected, load_model
    from eta311.storage import LocalStore
    from eta311.web.served import ModelStore

    import_seconds = time.perf_counter() - started

    store = LocalStore(ROOT / "models")
    card = json.loads(store.get("model_card.json"))
    load = timed(lambda: ModelStore(store, 0).refresh(), 5)
    models = ModelStore(store, 0)
    models.refresh()
    model = models.snapshot.model  # the numpy serving bundle, as the service loads it
    # scikit-learn's own predict needs the fitted estimators: the pickle, which the bundle leaves out.
    try:
        pickled = load_model({k: v for k, v in card.items() if k != "serving_artifact"}, store.get)
    except (ArtifactRejected, AttributeError, ImportError) as exc:  # e.g. pickled before a module moved
        pickled, why_not = None, f"{type(exc).__name__}: {exc}"

    one = model.features(["noise - residential"], [40.636626], [-73.951694], ["2019-06-08 00:00:09"])
    single = timed(lambda: model.predict_matrix(one), args.repeat)
    end_to_end = timed(
        lambda: model.estimate("noise - residential", 40.636626, -73.951694, "2019-06-08 00:00:09"), args.repeat
    )
    rng = np.random.default_rng(0)
    types = list(model.encoder.type_stats)
    n = args.rows
    batch = model.features(
        [types[i] for i in rng.integers(0, len(types), n)],
        rng.uniform(40.5, 40.9, n),
        rng.uniform(-74.2, -73.7, n),
        ["2019-06-08 12:00:00"] * n,
    )
    compiled = min(timed(lambda: model.predict_matrix(batch, use_sklearn=False), 3))

    print(f"artifact                 {card['artifact']['bytes'] / 1e6:.2f} MB ({card['version']})")
    print(f"import eta311 (no sklearn) {import_seconds * 1e3:.0f} ms")
    print(f"first load + check {load[0] * 1e3:.0f} ms; later loads p50 {statistics.median(load[1:]) * 1e3:.0f} ms")
    print(
        f"single-row predict, compiled   p50 {statistics.median(single) * 1e6:.0f} us  p99 {np.percentile(single, 99) * 1e6:.0f} us"
    )
    print(f"single-row estimate() incl. features p50 {statistics.median(end_to_end) * 1e6:.0f} us")
    print(f"{n:,} rows, compiled  {n / compiled:,.0f} rows/s")
    if pickled is None:
        print(f"scikit-learn's predict: not timed, the pickled artifact does not load ({why_not})")
    else:
        sklearn_one = timed(lambda: pickled.predict_matrix(one, use_sklearn=True), 50)
        sklearn = min(timed(lambda: pickled.predict_matrix(batch, use_sklearn=True), 3))
        print(f"single-row predict, sklearn    p50 {statistics.median(sklearn_one) * 1e6:.0f} us")
        print(f"{n:,} rows, sklearn   {n / sklearn:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
