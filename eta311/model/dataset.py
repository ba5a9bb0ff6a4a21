"""Raw Socrata 311 records to clean columns and resolution-time targets, with the drop rule."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from eta311.model.complaints import canonical_type
from eta311.model.features import parse_timestamps, to_float

# A request "closed" before it was opened is a data-entry error; one open for more than a year is
# an abandoned ticket whose closed_date says nothing about how long the city takes to act.
MAX_RESOLUTION_HOURS = 365 * 24.0
DAY_FILE_SUFFIX = ".json.gz"


@dataclass
class Columns:
    """Column view of a set of records, with resolution hours (NaN while still open)."""

    complaint_types: list[str]
    latitudes: np.ndarray
    longitudes: np.ndarray
    created: np.ndarray
    hours: np.ndarray
    # When each request was last seen (its day file's pull): an open one has waited at least that long.
    pulled: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.complaint_types)

    def subset(self, mask: np.ndarray) -> Columns:
        index = np.flatnonzero(mask)
        return Columns(
            [self.complaint_types[i] for i in index],
            self.latitudes[index],
            self.longitudes[index],
            self.created[index],
            self.hours[index],
            None if self.pulled is None else self.pulled[index],
        )

    def known_at(self, moment: np.datetime64) -> Columns:
        """These requests as someone at `moment` saw them: last seen then (or at their own pull, if
        earlier), and a closure after that not yet known. A model fitted at `moment` may use no more."""
        seen = np.minimum(self.pulled, moment)
        took = (np.nan_to_num(self.hours) * 3_600_000).astype("timedelta64[ms]")
        closed_by_then = self.created + took <= seen
        hours = np.where(~np.isnan(self.hours) & closed_by_then, self.hours, np.nan)
        return Columns(self.complaint_types, self.latitudes, self.longitudes, self.created, hours, seen)

    @property
    def closed(self) -> np.ndarray:
        return ~np.isnan(self.hours)

    @property
    def censor_hours(self) -> np.ndarray:
        """Follow-up at the pull: how long each request had been open when it was last seen."""
        return (self.pulled - self.created) / np.timedelta64(3_600_000, "ms")


def decode_day(blob: bytes) -> list[dict]:
    """A day file is a gzipped JSON array of records exactly as the Socrata API sends them."""
    records = json.loads(gzip.decompress(blob))
    if not isinstance(records, list):
        raise ValueError("a day file must hold a JSON array")
    return records


def encode_day(records: Sequence[dict]) -> bytes:
    """Deterministic bytes (fixed gzip mtime, sorted keys) so the same day always hashes the same."""
    text = json.dumps(list(records), sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), mtime=0)


def to_columns(records: Iterable[dict]) -> Columns:
    """Columns for every record with a parseable created_date and a complaint type."""
    records = [r for r in records if r.get("created_date") and r.get("complaint_type")]
    created = parse_timestamps([r["created_date"] for r in records])
    closed = parse_timestamps([r.get("closed_date") for r in records])
    hours = (closed - created).astype("timedelta64[ms]").astype(np.float64) / 3_600_000.0
    hours[np.isnat(closed) | np.isnat(created)] = np.nan
    return Columns(
        [canonical_type(r["complaint_type"]) for r in records],
        to_float([r.get("latitude") for r in records]),
        to_float([r.get("longitude") for r in records]),
        created,
        hours,
    )


def pulled_at(columns: Columns) -> np.datetime64:
    """When a day file was pulled: the latest timestamp it holds (a creation or a closure)."""
    known = columns.closed & ~np.isnat(columns.created)
    closures = columns.created[known] + (columns.hours[known] * 3_600_000).astype("timedelta64[ms]")
    return np.max(np.concatenate([columns.created[~np.isnat(columns.created)], closures]))


def columns_of_days(days: Iterable[Sequence[dict]]) -> Columns:
    """Columns of several day files, each request carrying its own file's pull time.

    Day files are pulled at different times (the sample's January-May files in mid June, its late
    June files on 23 July), so "still open" means open for as long as its own file had waited.
    """
    parts = [to_columns(records) for records in days]
    parts = [p for p in parts if len(p)]
    for part in parts:
        part.pulled = np.full(len(part), pulled_at(part), dtype="datetime64[ms]")
    if not parts:
        empty = np.array([], dtype="datetime64[ms]")
        return Columns([], np.array([]), np.array([]), empty, np.array([]), empty)
    return Columns(
        [t for p in parts for t in p.complaint_types],
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("latitudes", "longitudes", "created", "hours")
        ),
        np.concatenate([p.pulled for p in parts]),
    )


def usable(columns: Columns) -> Columns:
    """Every believable request, closed or still open; counts what the drop rule removed and why."""
    negative = columns.hours < 0
    too_long = columns.hours > MAX_RESOLUTION_HOURS
    no_date = np.isnat(columns.created)
    kept = columns.subset(~(negative | too_long | no_date))
    kept.dropped = {
        "closed_before_created": int(negative.sum()),
        "open_over_a_year": int(too_long.sum()),
        "bad_created_date": int(no_date.sum()),
    }
    return kept


def resolved(columns: Columns) -> Columns:
    """Closed requests with a believable span; counts what the drop rule removed and why."""
    open_ = np.isnan(columns.hours)
    negative = columns.hours < 0
    too_long = columns.hours > MAX_RESOLUTION_HOURS
    no_date = np.isnat(columns.created)
    keep = ~(open_ | negative | too_long | no_date)
    kept = columns.subset(keep)
    kept.dropped = {
        "still_open": int(open_.sum()),
        "closed_before_created": int(negative.sum()),
        "open_over_a_year": int(too_long.sum()),
        "bad_created_date": int((no_date & ~open_).sum()),
    }
    return kept


def medians_by_type(complaint_types: Sequence[str], hours: np.ndarray) -> dict[str, float]:
    """Median resolution hours per complaint type, two decimals, as medians.json has always held."""
    order = np.argsort(np.asarray(complaint_types, dtype=object), kind="stable")
    sorted_types = np.asarray(complaint_types, dtype=object)[order]
    sorted_hours = hours[order]
    names, starts = np.unique(sorted_types, return_index=True)
    groups = np.split(sorted_hours, starts[1:])
    return {str(n): round(float(np.median(g)), 2) for n, g in zip(names, groups)}
