"""Find batch closures: many requests of one agency closed in the same minute, an administrative act
rather than each request's resolution. Prints, for each held-out day of the card, every agency's
batches, and the largest batch share any agency had on an earlier day of the sample.

A batch is a closing minute shared by at least --min-batch requests of one agency created the same
day; batches less than an hour apart are reported together. Some agencies close routinely on the
hour (the sanitation department at 00:00 and 12:00), so the earlier days give the yardstick.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.model.features import parse_timestamps  # noqa: E402
from eta311.model.training import read_days  # noqa: E402
from eta311.storage import open_store  # noqa: E402

CARD = Path(__file__).resolve().parent.parent / "models" / "model_card.json"
_MINUTE = np.timedelta64(1, "m")


def closing_minutes(records: list[dict]) -> dict[str, list[np.datetime64]]:
    """Each agency's closing minutes (one per closed request) among a day's records."""
    closed = [r for r in records if r.get("closed_date") and r.get("created_date")]
    created = parse_timestamps([r["created_date"] for r in closed])
    closing = parse_timestamps([r["closed_date"] for r in closed]).astype("datetime64[m]")
    by_agency: dict[str, list[np.datetime64]] = {}
    for record, start, end in zip(closed, created, closing):
        if not np.isnat(start) and not np.isnat(end) and end >= start.astype("datetime64[m]"):
            by_agency.setdefault(record.get("agency", "?"), []).append(end)
    return by_agency


def batches(minutes: list[np.datetime64], min_batch: int) -> list[tuple[np.datetime64, np.datetime64, int]]:
    """(first minute, last minute, requests) of each run of batch minutes less than an hour apart."""
    counts = Counter(minutes)
    runs: list[list] = []
    for minute in sorted(m for m, n in counts.items() if n >= min_batch):
        if runs and minute - runs[-1][1] < 60 * _MINUTE:
            runs[-1][1] = minute
            runs[-1][2] += counts[minute]
        else:
            runs.append([minute, minute, counts[minute]])
    return [tuple(run) for run in runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/nyc311")
    parser.add_argument("--min-batch", type=int, default=50)
    parser.add_argument(
        "--out", default="models/batch_closures.txt", help="also write what is printed here (the README quotes it)"
    )
    args = parser.parse_args()
    held_out = json.loads(CARD.read_text())["evaluation"]["holdout_days"]
    lines = [
        f"batch closures: at least {args.min_batch} requests of one agency, created the same day, closed in one minute"
    ]
    earliest_held_out = min(held_out)
    largest_before: dict[str, tuple[float, str]] = {}
    earlier_days = 0
    batched_when_held_out: set[str] = set()
    for day in read_days(open_store(args.data), progress=lambda _: None):
        name = day.day.isoformat()
        earlier_days += name < earliest_held_out
        requests = Counter(r.get("agency", "?") for r in day.records)
        for agency, minutes in sorted(closing_minutes(day.records).items()):
            found = batches(minutes, args.min_batch)
            in_batches = sum(n for _, _, n in found)
            share = in_batches / requests[agency]
            if name < earliest_held_out:
                if share > largest_before.get(agency, (-1.0, ""))[0]:
                    largest_before[agency] = (share, name)
            elif name in held_out and found:
                batched_when_held_out.add(agency)
                spans = "; ".join(
                    f"{n:,} closed {first}" + ("" if first == last else f" to {last}") for first, last, n in found
                )
                lines.append(
                    f"{name} {agency}: {requests[agency]:,} requests, {in_batches:,} ({share:.0%}) closed in batches: {spans}"
                )
    for agency in sorted(batched_when_held_out):
        share, day = largest_before.get(agency, (0.0, ""))
        if share > 0:
            lines.append(f"earlier days, {agency}: largest share closed in batches {share:.0%} (on {day})")
        else:
            lines.append(f"earlier days, {agency}: no batch on any of the {earlier_days} earlier days")
    print("\n".join(lines))
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
