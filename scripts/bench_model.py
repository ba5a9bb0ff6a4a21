"""In-process CPU per request: the WSGI app's floor, medians and model routes, and the model's parts, without a server.

What a request costs in Python before Gunicorn and HTTP add their share: each route is called
through the WSGI interface with the held-out requests (bench/heldout_requests.json), in rounds that
interleave the routes so a host that drifts in speed moves them alike; medians over rounds. Then
the serving model's parts (the numpy bundle, as the service loads it): features and the compiled
forest for one row, and batches of 1,000 and 10,000 rows. Logging goes to /dev/null so the figures
hold the cost of formatting a request's log line but not a terminal's.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import REQUESTS_FILE, request_paths  # noqa: E402 - the same held-out requests as the served benchmark


def wsgi_caller(app: Callable, paths: list[str]) -> Callable[[int], None]:
    """Call app on the i-th path (cycling), as a server would, reading the whole answer."""
    from werkzeug.test import EnvironBuilder

    environs = []
    for path in paths:
        route, _, query = path.partition("?")
        environs.append(EnvironBuilder(path=unquote(route), query_string=query).get_environ())

    def start_response(status: str, headers: list) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"{status} from the in-process app")

    def call(i: int) -> None:
        b"".join(app(dict(environs[i % len(environs)]), start_response))

    return call


def median_us(action: Callable[[int], None], repeat: int) -> float:
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times[repeat // 10 :]) * 1e6


def routes(rounds: int, repeat: int) -> dict[str, float]:
    """Median us per call of the floor, the medians route and the model route, over interleaved rounds."""
    import floor_app

    from eta311.settings import Settings
    from eta311.web.app import create_app

    app = create_app(Settings(model_uri=str(ROOT / "models"), fallback_uri=None, reload_interval_seconds=0))
    medians_paths, model_paths = request_paths()
    calls = {
        "floor: bare Flask": wsgi_caller(floor_app.app, ["/"]),
        "medians route": wsgi_caller(app, medians_paths),
        "model route": wsgi_caller(app, model_paths),
    }
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            runs[name].append(median_us(call, repeat))
    return {name: statistics.median(values) for name, values in runs.items()}


def model_parts(repeat: int, rows: int) -> list[str]:
    """The bundled model's features and compiled forest for one row, rows/s for a batch, and scikit-learn's if it loads."""
    import numpy as np

    from eta311.model.artifact import ArtifactRejected, load_model
    from eta311.model.complaints import canonical_type
    from eta311.model.features import parse_timestamps
    from eta311.storage import LocalStore
    from eta311.web.served import ModelStore

    store = LocalStore(ROOT / "models")
    started = time.perf_counter()
    models = ModelStore(store, 0)
    models.refresh()
    load_ms = (time.perf_counter() - started) * 1e3
    model = models.current.model  # the numpy serving bundle, as the service loads it
    held_out = json.loads(REQUESTS_FILE.read_text())
    types = [canonical_type(r["complaint_type"]) for r in held_out]
    stamps = parse_timestamps([r["date"] for r in held_out])
    lats, lons = [r["lat"] for r in held_out], [r["lon"] for r in held_out]
    matrix = model.features(types, lats, lons, stamps)
    n = len(held_out)
    single = [timed(lambda i=i: model.predict_matrix(matrix[i % n : i % n + 1])) for i in range(repeat)]
    features_us = median_us(
        lambda i: model.features([types[i % n]], [lats[i % n]], [lons[i % n]], stamps[i % n : i % n + 1]), repeat
    )
    forest_us = median_us(lambda i: model.compiled.predict(matrix[i % n : i % n + 1]), repeat)
    pick = [i % n for i in range(rows)]
    columns = ([types[i] for i in pick], [lats[i] for i in pick], [lons[i] for i in pick], stamps[pick])
    batch = min(timed(lambda: model.predict_matrix(model.features(*columns))) for _ in range(3))
    lines = [
        f"bundle load and check {load_ms:.0f} ms",
        f"features, one row (date parsed) p50 {features_us:.1f} us; compiled forest alone p50 {forest_us:.1f} us",
        f"single-row predict, compiled   p50 {statistics.median(single) * 1e6:.1f} us"
        f"  p99 {np.percentile(single, 99) * 1e6:.1f} us (forest, offsets, hours)",
        f"{rows:,} rows, compiled  {rows / batch:,.0f} rows/s (features and predict)",
    ]
    card = json.loads(store.get("model_card.json"))
    # scikit-learn's own predict needs the fitted estimators: the pickle, which the bundle leaves out.
    try:
        pickled = load_model({k: v for k, v in card.items() if k != "serving_artifact"}, store.get)
    except (ArtifactRejected, AttributeError, ImportError) as exc:  # e.g. pickled before a module moved
        return [*lines, f"scikit-learn's predict: not timed, the pickled artifact does not load ({type(exc).__name__})"]
    one = matrix[:1]
    sklearn_one = [timed(lambda: pickled.predict_matrix(one, use_sklearn=True)) for _ in range(50)]
    full = model.features(*columns)
    sklearn = min(timed(lambda: pickled.predict_matrix(full, use_sklearn=True)) for _ in range(3))
    return [
        *lines,
        f"single-row predict, sklearn    p50 {statistics.median(sklearn_one) * 1e6:.0f} us",
        f"{rows:,} rows, sklearn   {rows / sklearn:,.0f} rows/s",
    ]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2000, help="calls per route and round, and timed single rows")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the batch")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=open("/dev/null", "w"), level=logging.INFO)  # noqa: SIM115 - lives as long as the run
    per_route = routes(args.rounds, args.repeat)
    floor = per_route["floor: bare Flask"]
    print(f"WSGI call, median of {args.rounds} interleaved rounds of {args.repeat} calls (us; extra over the floor):")
    for name, us in per_route.items():
        print(f"  {name:<20}{us:>8.1f}{us - floor:>+10.1f}")
    print("the serving model (numpy bundle):")
    for line in model_parts(args.repeat, args.rows):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
