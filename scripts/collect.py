"""Collect the 311 requests created on a day (default: yesterday in New York) into STORE_URI/raw/."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date as Date
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eta311.data.socrata import (  # noqa: E402
    DEFAULT_SOCRATA_URL,
    MAX_PAGE_SIZE,
    CollectError,
    SocrataClient,
    collect_day,
    yesterday_in_new_york,
)
from eta311.settings import DEFAULT_STORE_URI  # noqa: E402
from eta311.storage import open_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--date", type=Date.fromisoformat, default=None, help="YYYY-MM-DD (default: yesterday in New York)"
    )
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="also re-collect the days before --date, so requests closed since are picked up",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("STORE_URI", DEFAULT_STORE_URI),
        help="folder or s3://bucket/prefix (STORE_URI)",
    )
    parser.add_argument(
        "--url", default=os.environ.get("SOCRATA_URL", DEFAULT_SOCRATA_URL), help="dataset endpoint (SOCRATA_URL)"
    )
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    last = args.date or yesterday_in_new_york()
    store = open_store(args.store, os.environ.get("AWS_ENDPOINT_URL_S3") or None)
    client = SocrataClient(args.url, os.environ.get("SOCRATA_APP_TOKEN") or None, args.page_size)
    failed = 0
    for back in range(args.days - 1, -1, -1):
        day = last - timedelta(days=back)
        try:
            done = collect_day(store, day, client)
        except CollectError as exc:  # one bad day does not stop the others; the exit code reports it
            logging.error("%s: %s", day, exc)
            failed += 1
            continue
        print(
            f"{done.name}: {done.records:,} records ({done.duplicates} duplicates dropped) in {done.pages} pages,"
            f" {done.retries} retries, {done.seconds:.2f} s, {done.records_per_second:,.0f} records/s, sha256 {done.version[:12]}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
