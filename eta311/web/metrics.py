"""Prometheus metrics, counted across Gunicorn workers (prometheus-client multiprocess mode); no Flask here.

Under Gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a per-port folder on /dev/shm
before anything imports prometheus_client, so each worker writes its values to mmapped files there
and a scrape of any worker sums every worker's files. Without it (tests, the Flask dev server,
Lambda) the values live in the process.
"""

from __future__ import annotations

import fcntl
import glob
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import values as prometheus_values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.mmap_dict import MmapedDict

from eta311.logfmt import annotate

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format, version 0.0.4
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
# Heroku names each dyno (web.1, web.2): every series carries it, since one scrape sees one dyno.
DYNO = os.environ.get("DYNO") or socket.gethostname()
# From a quarter of a millisecond (a median answer) to a second (a large batch), doubling.
DURATION_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 5.0)
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
UNMATCHED = "unmatched"  # the route label of a 404 or 405: never the raw path, which a client chooses
ARCHIVE_PID = "archive"  # counter_archive.db holds the counts of every retired worker


class ProcessId:
    """os.getpid(), kept: refreshed in each forked child instead of asked of the kernel on every call.

    prometheus-client asks for the pid on every metric update (a value file per process), which is
    a system call each, four a request; so does the model store before it answers.
    """

    def __init__(self) -> None:
        self.refresh()
        os.register_at_fork(after_in_child=self.refresh)  # before any later hook that updates a metric

    def refresh(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


process_id = ProcessId()
if MULTIPROCESS_DIR:
    # Set before the first metric is made: every value must come from this one class (and its files).
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(process_identifier=process_id)

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["dyno", "route", "method", "status"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from routing to the answer, by route template, method and status class",
    ["dyno", "route", "method", "status_class"],
    buckets=DURATION_BUCKETS,
)
PREDICTIONS = Counter(
    "eta311_predictions_total",
    "Estimates served, by kind (medians or model), single request or batch row, and version",
    ["dyno", "kind", "source", "version"],
)
RELOADS = Counter(
    "eta311_reloads_total",
    "New medians, model or statistics versions loaded (each worker loads its own)",
    ["dyno", "artifact"],
)
REFUSED = Counter(
    "eta311_publishes_refused_total",
    "Published files that failed their checks and were not served",
    ["dyno", "artifact"],
)
RATE_LIMITED = Counter(
    "eta311_rate_limit_refusals_total", "Requests refused with 429, by usage plan and limit", ["dyno", "plan", "limit"]
)
REDIS_ERRORS = Counter("eta311_redis_errors_total", "Redis calls that failed, by what called", ["dyno", "operation"])
# liveall: one series per live worker (a pid label is added); a dead worker's series go with it.
SERVING = Gauge(
    "eta311_serving_info",
    "1 for the model and medians versions each worker serves now (0: served before)",
    ["dyno", "model_version", "medians_version"],
    multiprocess_mode="liveall",
)

_children: dict[tuple, Any] = {}


def _child(metric: MetricWrapperBase, *labels: str) -> Any:
    # labels() validates and locks each call; the label sets are few, so keep each child once.
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(DYNO, *labels)
    return child


_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One request answered: a count and a duration (the whole per-request cost of metrics)."""
    method = method if method in METHODS else "other"  # before the key: a client's method never grows it
    key = (route, method, status)
    series = _request_series.get(key)
    if series is None:  # the labels are worked out once per route, method and status
        series = _request_series[key] = (
            _child(REQUESTS, route, method, str(status)),
            _child(DURATION, route, method, f"{status // 100}xx"),
        )
    series[0].inc()
    series[1].observe(seconds)


def predicted(kind: str, version: str | None, count: int = 1, source: str = "single") -> None:
    """count estimates of kind (medians or model) served; the request's log line names the version."""
    if count:
        _child(PREDICTIONS, kind, source, version or "none").inc(count)
    annotate(**{f"{kind}_version": version})


def reloaded(artifact: str) -> None:
    _child(RELOADS, artifact).inc()


def publish_refused(artifact: str) -> None:
    _child(REFUSED, artifact).inc()


def rate_limited(plan: str, limit: str) -> None:
    _child(RATE_LIMITED, plan, limit).inc()


def redis_error(operation: str) -> None:
    _child(REDIS_ERRORS, operation).inc()


_forked = False
_serving: tuple[str, str] | None = None


def _after_fork() -> None:
    global _forked, _serving
    _forked, _serving = True, None


os.register_at_fork(after_in_child=_after_fork)


def serving(model_version: str | None, medians_version: str | None) -> None:
    """What this worker serves now. Gunicorn's master loads but never serves, so it reports nothing."""
    global _serving
    if MULTIPROCESS_DIR and not _forked:
        return
    now = (model_version or "none", medians_version or "none")
    if now == _serving:
        return
    if _serving is not None:
        _child(SERVING, *_serving).set(0)  # a multiprocess file cannot drop a series: 0 marks it past
    _child(SERVING, *now).set(1)
    _serving = now


@contextmanager
def _folder_lock(folder: str, mode: int) -> Iterator[None]:
    """Scrapes share it; merging a dead worker's files takes it alone, so no scrape counts them twice."""
    with open(os.path.join(folder, "merge.lock"), "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def exposition() -> bytes:
    """Every worker's metrics of this dyno in the Prometheus text format (or this process's alone)."""
    if not MULTIPROCESS_DIR:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry, MULTIPROCESS_DIR)
    with _folder_lock(MULTIPROCESS_DIR, fcntl.LOCK_SH):
        return generate_latest(registry)


def reset_folder(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for path in glob.glob(os.path.join(folder, "*.db")):
        os.remove(path)


_claimed: set[tuple[int, str]] = set()


def claim_folder(folder: str) -> None:
    """At master start, no file of an earlier run may add its counts to this one's; wiped once per
    process, since a SIGHUP makes Gunicorn read its config again while workers are writing there."""
    if (os.getpid(), folder) not in _claimed:
        reset_folder(folder)
        _claimed.add((os.getpid(), folder))


def remove_folder(folder: str) -> None:
    """At master exit: the files and, if nothing else is in it, the folder."""
    reset_folder(folder)
    for leftover in glob.glob(os.path.join(folder, "*.merging")) + [os.path.join(folder, "merge.lock")]:
        if os.path.exists(leftover):
            os.remove(leftover)
    try:
        os.rmdir(folder)
    except OSError:
        pass  # someone else's files are there too


def retire_worker(pid: int, folder: str) -> None:
    """A worker exited (max_requests, timeout, crash, shutdown): drop its live gauges, fold its counts.

    Counters and histograms of a dead worker must keep counting, or totals would drop and
    Prometheus would read a counter reset. Left as files, one pair per recycled worker, they would
    grow without bound (and every scrape reads them all), so they are added into one archive file
    per type and removed: the folder holds the live workers' files plus two archives.
    """
    prometheus_multiprocess.mark_process_dead(pid, folder)
    with _folder_lock(folder, fcntl.LOCK_EX):
        for kind in ("counter", "histogram"):
            dead = os.path.join(folder, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = os.path.join(folder, f"{kind}_{ARCHIVE_PID}.db")
            totals: dict[str, float] = {}
            for path in (archive, dead):
                if os.path.exists(path):
                    for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(path):
                        totals[key] = totals.get(key, 0.0) + value
            merged_path = os.path.join(folder, f"{kind}_{ARCHIVE_PID}.merging")  # not *.db: scrapes skip it
            if os.path.exists(merged_path):  # left by a master that died mid-merge: MmapedDict would reuse it
                os.remove(merged_path)
            merged = MmapedDict(merged_path)
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
            merged.close()
            os.replace(merged_path, archive)
            os.remove(dead)
