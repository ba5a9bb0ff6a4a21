"""Recompute and publish the medians from STORE_URI/raw/ (and with --retrain, the model if no worse)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.data.trigger import recompute_medians, recompute_type_stats, retrain, watch  # noqa: E402
from eta311.model.training import MEDIANS_WINDOW_DAYS  # noqa: E402
from eta311.settings import BUNDLED_MODELS, DEFAULT_STORE_URI, published_uri  # noqa: E402
from eta311.storage import open_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--store",
        default=os.environ.get("STORE_URI", DEFAULT_STORE_URI),
        help="folder or s3://bucket/prefix (STORE_URI)",
    )
    parser.add_argument(
        "--window-days", type=int, default=MEDIANS_WINDOW_DAYS, help="medians from the latest N days of raw data"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="also retrain; publish only if no worse on the held-out days"
    )
    parser.add_argument("--holdout-days", type=int, default=30)
    parser.add_argument(
        "--watch",
        type=float,
        default=0,
        metavar="SECONDS",
        help="keep running: poll raw/ every SECONDS and run whenever a day lands (a clock process)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or None
    raw = open_store(args.store, endpoint)
    published = open_store(published_uri(args.store), endpoint)

    def run_once() -> None:
        medians = recompute_medians(raw, published, args.window_days)
        print(
            f"medians {medians.version}: {'published' if medians.published else 'unchanged'};"
            f" {medians.complaint_types} types from {medians.rows:,} resolved requests on {len(medians.days_used)} days"
            f" ({len(medians.days_skipped)} days skipped as too recent: {', '.join(medians.days_skipped) or 'none'})",
            flush=True,
        )
        stats = recompute_type_stats(raw, published)
        print(
            f"type statistics {stats.version}: {'published' if stats.published else 'unchanged'};"
            f" {stats.complaint_types} types as of {stats.as_of}",
            flush=True,
        )
        if args.retrain:
            result = retrain(raw, published, [published, open_store(str(BUNDLED_MODELS))], args.holdout_days)
            verdict = f"published {result.version}" if result.published else "not published (worse than current)"
            current = "none" if result.current_mae is None else f"{result.current_mae:.2f} h ({result.current_version})"
            print(
                f"retrained: held-out {result.holdout['first_day']}..{result.holdout['last_day']} MAE-hinge {result.candidate_mae:.2f} h"
                f" against current {current}: {verdict}",
                flush=True,
            )

    if args.watch:
        watch(raw, run_once, args.watch)
        return 0
    try:
        run_once()
    except ValueError as exc:
        logging.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
