"""One day of 311 requests from the Socrata API, fetched page by page and stored whole or not at all."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import date as Date, datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import requests

from eta311.storage import Store
from eta311.model.dataset import DAY_FILE_SUFFIX, encode_day

log = logging.getLogger(__name__)

DEFAULT_SOCRATA_URL = "https://data.cityofnewyork.us/resource/erm2-nwe9.json"
NEW_YORK = ZoneInfo("America/New_York")
RAW_PREFIX = "raw/"
# Socrata 2.0 endpoints cap $limit at 50,000; one page per request keeps memory to a page's worth.
MAX_PAGE_SIZE = 50_000
# Paging without an order is unstable (rows can repeat or vanish between pages); unique_key breaks ties.
ORDER = "created_date,unique_key"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class CollectError(RuntimeError):
    """The day could not be fetched whole; nothing was written."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Retry-After when the server gives one, else exponential backoff with full jitter."""
        if retry_after:
            try:
                return min(float(retry_after), self.max_seconds)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return random.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))


@dataclass(frozen=True)
class Collected:
    day: Date
    name: str
    records: int
    duplicates: int
    pages: int
    retries: int
    seconds: float
    version: str

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


def yesterday_in_new_york(now: datetime | None = None) -> Date:
    """Socrata timestamps are New York wall time, so 'yesterday' is New York's yesterday."""
    now = now or datetime.now(tz=NEW_YORK)
    return now.astimezone(NEW_YORK).date() - timedelta(days=1)


def day_filter(day: Date) -> str:
    """SoQL for requests created on that day; floating timestamps compare as New York wall time."""
    start, end = day.isoformat(), (day + timedelta(days=1)).isoformat()
    return f"created_date >= '{start}T00:00:00.000' AND created_date < '{end}T00:00:00.000'"


def raw_name(day: Date) -> str:
    return f"{RAW_PREFIX}{day.isoformat()}{DAY_FILE_SUFFIX}"


class SocrataClient:
    """Pages through one dataset with retries; only ever returns whole, well-formed pages."""

    def __init__(
        self,
        url: str = DEFAULT_SOCRATA_URL,
        app_token: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        retry: RetryPolicy = RetryPolicy(),
        session: requests.Session | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        self.url = url
        self.page_size = page_size
        self.retry = retry
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        if app_token:
            self.session.headers["X-App-Token"] = app_token
        self.retries = 0
        self.pages = 0

    def page(self, where: str, offset: int) -> list[dict]:
        params = {"$where": where, "$order": ORDER, "$limit": self.page_size, "$offset": offset}
        problem = "no attempt made"
        for attempt in range(self.retry.attempts):
            if attempt:
                self.retries += 1
            retry_after = None
            try:
                response = self.session.get(self.url, params=params, timeout=(self.retry.connect_timeout, self.retry.read_timeout))
                if response.status_code in RETRY_STATUSES:
                    retry_after = response.headers.get("Retry-After")
                    problem = f"HTTP {response.status_code}"
                elif response.status_code != 200:
                    raise CollectError(f"Socrata answered HTTP {response.status_code} at offset {offset}: {response.text[:200]}")
                else:
                    try:
                        rows = response.json()
                    except ValueError as exc:  # a body cut short in transit: fetch the page again
                        problem = f"unreadable JSON ({exc})"
                    else:
                        return self._checked(rows, offset)
            except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < self.retry.attempts:
                pause = self.retry.delay(attempt, retry_after)
                log.warning("page at offset %d failed (%s); retry %d in %.1f s", offset, problem, attempt + 1, pause)
                time.sleep(pause)
        raise CollectError(f"page at offset {offset} failed {self.retry.attempts} times; last: {problem}")

    @staticmethod
    def _checked(rows: object, offset: int) -> list[dict]:
        # Socrata reports some errors as a 200 with a JSON object; that is an error, never data.
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise CollectError(f"page at offset {offset} is not a JSON array of records: {str(rows)[:200]}")
        return rows

    def day(self, day: Date, progress: Callable[[str], None] = log.info) -> list[dict]:
        """Every request created on day, following $offset until a short page."""
        where, rows, pages, started = day_filter(day), [], 0, time.perf_counter()
        while True:
            page = self.page(where, offset=len(rows))
            rows.extend(page)
            pages += 1
            self.pages += 1
            elapsed = time.perf_counter() - started
            progress(f"{day}: {len(rows):,} records after {pages} pages, {len(rows) / max(elapsed, 1e-9):,.0f} records/s")
            if len(page) < self.page_size:
                return rows


def deduplicated(rows: list[dict]) -> tuple[list[dict], int]:
    """One record per unique_key (the last one seen), in key order, so reruns give the same bytes."""
    by_key: dict[str, dict] = {}
    for row in rows:
        key = row.get("unique_key")
        if key is None:
            raise CollectError(f"record without unique_key: {str(row)[:200]}")
        by_key[str(key)] = row
    ordered = sorted(by_key.items(), key=lambda kv: (len(kv[0]), kv[0]))  # numeric order for digit keys
    return [row for _, row in ordered], len(rows) - len(by_key)


def collect_day(store: Store, day: Date, client: SocrataClient, progress: Callable[[str], None] = log.info) -> Collected:
    """Fetch the whole day, then write raw/YYYY-MM-DD.json.gz in one atomic put."""
    started, retries_before, pages_before = time.perf_counter(), client.retries, client.pages
    rows = client.day(day, progress)
    if not rows:  # the day is not published yet, or the filter is wrong: never replace data with nothing
        raise CollectError(f"Socrata returned no requests created on {day}; nothing written")
    records, duplicates = deduplicated(rows)
    name = raw_name(day)
    version = store.put(name, encode_day(records))
    return Collected(day, name, len(records), duplicates, client.pages - pages_before, client.retries - retries_before,
                     time.perf_counter() - started, version)
