"""Collector throughput against the local Socrata stand-in on loopback: records per second, per page size."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from datetime import date as Date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_socrata import FakeSocrata  # noqa: E402

from eta311.data.socrata import SocrataClient, collect_day  # noqa: E402
from eta311.storage import LocalStore  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", default=str(ROOT / "tests" / "fixtures" / "nyc311"), help="folder of YYYY-MM-DD.json.gz"
    )
    parser.add_argument("--days", type=int, default=5, help="how many of the days to collect")
    parser.add_argument("--page-sizes", default="50000,1000")
    args = parser.parse_args(argv)

    files = sorted(Path(args.data).glob("*.json.gz"))[: args.days]
    records = [r for path in files for r in json.loads(gzip.decompress(path.read_bytes()))]
    days = [Date.fromisoformat(p.name[:10]) for p in files]
    print(f"{len(records):,} records over {len(days)} days from {args.data}")
    with FakeSocrata(records) as socrata, tempfile.TemporaryDirectory() as folder:
        for page_size in (int(p) for p in args.page_sizes.split(",")):
            client = SocrataClient(socrata.url, page_size=page_size)
            started, total = time.perf_counter(), 0
            for day in days:
                total += collect_day(LocalStore(folder), day, client, progress=lambda _: None).records
            seconds = time.perf_counter() - started
            print(
                f"page size {page_size:>6}: {total:,} records in {client.pages} pages, {seconds:.2f} s,"
                f" {total / seconds:,.0f} records/s (fetch, parse, deduplicate, gzip, atomic write)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
