"""Event entry points for AWS Lambda (Zappa or serverless.yml): the nightly collect-then-trigger, and the trigger on raw uploads."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, timedelta
from urllib.parse import unquote_plus, urlparse

from eta311.data.socrata import (
    DEFAULT_SOCRATA_URL,
    RAW_PREFIX,
    CollectError,
    SocrataClient,
    collect_day,
    yesterday_in_new_york,
)
from eta311.data.trigger import recompute_medians
from eta311.settings import published_uri
from eta311.storage import Store, open_store

log = logging.getLogger(__name__)

# As the Heroku Scheduler entry does (collect.py --days 7): a night the schedule missed, and requests
# closed since a day was first pulled, are picked up by the next run.
DEFAULT_COLLECT_DAYS = 7


class JobFailed(RuntimeError):
    """The night's day could not be collected; raised so Lambda counts an error (and retries)."""


@dataclass(frozen=True)
class JobStores:
    uri: str
    raw: Store
    published: Store


def job_stores(env: Mapping[str, str] | None = None) -> JobStores:
    """STORE_URI's raw days and published folder, through the S3 endpoint the environment names."""
    env = os.environ if env is None else env
    uri = env.get("STORE_URI") or "data"
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or None
    return JobStores(uri, open_store(uri, endpoint), open_store(published_uri(uri), endpoint))


def scheduled_day(event: Mapping) -> Date:
    """Yesterday in New York as of when the schedule fired (the event's time), so a late retry collects the same day."""
    fired = event.get("time")
    if not fired:
        return yesterday_in_new_york()
    return yesterday_in_new_york(datetime.fromisoformat(fired.replace("Z", "+00:00")))


def run_trigger(stores: JobStores) -> dict:
    """Recompute the medians; a store with no mature day yet is a state to report, not an error to retry."""
    try:
        result = recompute_medians(stores.raw, stores.published)
    except ValueError as exc:
        log.warning("trigger: %s", exc)
        return {"published": False, "version": None, "problem": str(exc)}
    log.info("trigger: medians %s %s from %d days", result.version, "published" if result.published else "unchanged",
             len(result.days_used))
    return {"published": result.published, "version": result.version, "days_used": result.days_used,
            "days_skipped": result.days_skipped}


def daily(event: Mapping, context: object = None) -> dict:
    """The nightly job: collect yesterday and the days before it from Socrata into raw/, then run the trigger.

    Only yesterday must succeed; earlier days of the window are best effort (already collected on
    their own night), reported in the answer. Yesterday failing raises JobFailed after the trigger.
    """
    env = os.environ
    stores = job_stores(env)
    days = int(env.get("COLLECT_DAYS") or DEFAULT_COLLECT_DAYS)
    client = SocrataClient(env.get("SOCRATA_URL") or DEFAULT_SOCRATA_URL, env.get("SOCRATA_APP_TOKEN") or None)
    last = scheduled_day(event)
    collected, failed = [], {}
    for back in range(days - 1, -1, -1):
        day = last - timedelta(days=back)
        try:
            done = collect_day(stores.raw, day, client)
        except CollectError as exc:
            log.error("collect %s: %s", day, exc)
            failed[str(day)] = str(exc)
            continue
        log.info("collect %s: %d records in %d pages, %d retries", day, done.records, done.pages, done.retries)
        collected.append({"day": str(day), "records": done.records, "sha256": done.version})
    summary = {"store": stores.uri, "day": str(last), "collected": collected, "failed": failed,
               "medians": run_trigger(stores)}
    if str(last) in failed:
        raise JobFailed(f"{last} was not collected: {failed[str(last)]}")
    return summary


def raw_keys(event: Mapping, store_uri: str) -> list[str]:
    """The object keys in an S3 event that are day files under the store's raw/ folder (keys come URL-encoded)."""
    parsed = urlparse(store_uri)
    prefix = parsed.path.strip("/")
    wanted = f"{prefix}/{RAW_PREFIX}" if prefix else RAW_PREFIX
    keys = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        key = unquote_plus(s3.get("object", {}).get("key", ""))
        if parsed.scheme == "s3" and s3.get("bucket", {}).get("name") == parsed.netloc and key.startswith(wanted):
            keys.append(key)
    return keys


def on_raw_upload(event: Mapping, context: object = None) -> dict:
    """An S3 ObjectCreated event on raw/: recompute (and publish if changed) the medians."""
    stores = job_stores()
    keys = raw_keys(event, stores.uri)
    if not keys:
        log.info("S3 event names no day file under %s/%s; nothing to do", stores.uri, RAW_PREFIX)
        return {"store": stores.uri, "keys": [], "medians": None}
    return {"store": stores.uri, "keys": keys, "medians": run_trigger(stores)}
