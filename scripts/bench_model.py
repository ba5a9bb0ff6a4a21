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


def main() -> int:
    import numpy as np

    started = time.perf_counter()
    from eta311.storage import LocalStore
    from eta311.web.served import ModelStore

    import_seconds = time.perf_counter() - started

    store = LocalStore(ROOT / "models")
    card = json.loads(store.get("model_card.json"))
    load = timed(lambda: ModelStore(store, 0).refresh(), 5)
    models = ModelStore(store, 0)
    models.refresh()
    model = models.snapshot.model

    one = model.features(["noise - residential"], [40.636626], [-73.951694], ["2019-06-08 00:00:09"])
    single = timed(lambda: model.predict_matrix(one), 2000)
    end_to_end = timed(
        lambda: model.estimate("noise - residential", 40.636626, -73.951694, "2019-06-08 00:00:09"), 2000
    )
    rng = np.random.default_rng(0)
    types = list(model.encoder.type_stats)
    n = 10_000
    batch = model.features(
        [types[i] for i in rng.integers(0, len(types), n)],
        rng.uniform(40.5, 40.9, n),
        rng.uniform(-74.2, -73.7, n),
        ["2019-06-08 12:00:00"] * n,
    )
    compiled = min(timed(lambda: model.predict_matrix(batch, use_sklearn=False), 3))
    sklearn = min(timed(lambda: model.predict_matrix(batch, use_sklearn=True), 3))
    sklearn_one = timed(lambda: model.predict_matrix(one, use_sklearn=True), 50)

    print(f"artifact                 {card['artifact']['bytes'] / 1e6:.2f} MB ({card['version']})")
    print(f"import eta311 (no sklearn) {import_seconds * 1e3:.0f} ms")
    print(
        f"first load + check (imports scikit-learn) {load[0] * 1e3:.0f} ms; later loads p50 {statistics.median(load[1:]) * 1e3:.0f} ms"
    )
    print(
        f"single-row predict, compiled   p50 {statistics.median(single) * 1e6:.0f} us  p99 {np.percentile(single, 99) * 1e6:.0f} us"
    )
    print(f"single-row estimate() incl. features p50 {statistics.median(end_to_end) * 1e6:.0f} us")
    print(f"single-row predict, sklearn    p50 {statistics.median(sklearn_one) * 1e6:.0f} us")
    print(f"10,000 rows, compiled  {n / compiled:,.0f} rows/s")
    print(f"10,000 rows, sklearn   {n / sklearn:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
