"""Train the model on daily 311 files and publish artifact, card, medians and picture to a store."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.data.publish import publish_medians, publish_trained_model  # noqa: E402
from eta311.model.evaluation_plot import evaluation_png  # noqa: E402
from eta311.model.training import read_days, train_on_days  # noqa: E402
from eta311.storage import LocalStore, open_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="folder or s3:// address of YYYY-MM-DD.json.gz files")
    parser.add_argument(
        "--prefix", default="", help="key prefix of the day files inside --data (raw/ in a pipeline store)"
    )
    # No default: publishing into models/ replaces the bundled model git tracks, so it must be asked for.
    parser.add_argument("--out", required=True, help="folder or s3:// address to publish to (models: the bundled one)")
    parser.add_argument("--holdout-days", type=int, default=30)
    args = parser.parse_args(argv)
    if "://" not in args.data and not Path(args.data, args.prefix).is_dir():
        parser.error(f"folder not found: {Path(args.data, args.prefix)} (where are the YYYY-MM-DD.json.gz files?)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    started = time.perf_counter()
    days = read_days(open_store(args.data), args.prefix)
    run = train_on_days(days, args.holdout_days)
    out = open_store(args.out)
    card = publish_trained_model(out, run.model, run.card)
    publish_medians(out, run.medians)
    out.put("evaluation.png", evaluation_png(run.card["metrics"], run.predicted, run.actual))
    if isinstance(out, LocalStore):  # keep the bundled folder to the one artifact its card names
        for stale in Path(out.root).glob("model-*"):
            if stale.name not in (card["artifact"]["name"], card["serving_artifact"]["name"]):
                stale.unlink()

    m = card["metrics"]
    print(
        f"model {card['version']}: {card['artifact']['bytes'] / 1e6:.2f} MB, trained in {time.perf_counter() - started:.0f} s"
    )
    print(f"held-out {m['rows']} rows ({card['holdout_window']['first_day']}..{card['holdout_window']['last_day']})")
    print(
        f"MAE model {m['model_mae']:.2f} h | median all days {m['median_all_training_days_mae']:.2f} h"
        f" | median latest 30 days {m['median_latest_30_days_mae']:.2f} h | 10-90 coverage {m['interval_coverage_10_90']:.0%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
