"""scripts/batch_closures.py: batches are found from closing minutes, and the README quotes what it wrote."""

import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import batch_closures  # noqa: E402 - scripts/ is not a package


def record(agency: str, created: str, closed: str | None) -> dict:
    body = {"agency": agency, "created_date": created, "complaint_type": "Noise - Residential"}
    return body if closed is None else {**body, "closed_date": closed}


def test_a_batch_is_a_minute_shared_by_enough_requests_and_near_ones_are_reported_together():
    minute = np.datetime64("2019-06-29T07:53", "m")
    minutes = [minute] * 5 + [minute + np.timedelta64(10, "m")] * 4 + [minute + np.timedelta64(3, "h")] * 3
    minutes += [minute + np.timedelta64(5, "h")] * 2  # too few to be a batch
    assert batch_closures.batches(minutes, min_batch=3) == [
        (minute, minute + np.timedelta64(10, "m"), 9),
        (minute + np.timedelta64(3, "h"), minute + np.timedelta64(3, "h"), 3),
    ]
    assert batch_closures.batches(minutes, min_batch=6) == []


def test_closing_minutes_are_per_agency_and_skip_open_unparseable_and_backwards_requests():
    records = [
        record("NYPD", "2019-06-28T10:00:00.000", "2019-06-29T07:53:41.000"),
        record("NYPD", "2019-06-28T11:00:00.000", "2019-06-29T07:53:02.000"),
        record("NYPD", "2019-06-28T12:00:00.000", None),
        record("NYPD", "2019-06-28T12:00:00.000", "not a date"),
        record("NYPD", "2019-06-28T12:00:00.000", "2019-06-27T12:00:00.000"),
        record("DSNY", "2019-06-28T09:00:00.000", "2019-07-01T12:00:00.000"),
    ]
    assert batch_closures.closing_minutes(records) == {
        "NYPD": [np.datetime64("2019-06-29T07:53", "m")] * 2,
        "DSNY": [np.datetime64("2019-07-01T12:00", "m")],
    }


def test_the_readme_quotes_the_batch_closures_as_the_script_wrote_them():
    written = (ROOT / "models" / "batch_closures.txt").read_text()  # scripts/batch_closures.py --out
    readme = (ROOT / "README.md").read_text()
    quoted = readme[readme.index("batch_closures.txt`)") : readme.index('Their "resolution times"')]
    figures = re.findall(r"\d{4}-\d\d-\d\d|\d\d:\d\d|\d[\d,]*%?", quoted)
    assert len(figures) >= 10
    assert [f for f in figures if f not in written] == []
