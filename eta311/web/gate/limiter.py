"""Usage plans applied: a plan's burst window and daily quota counted with the `limits` library."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string

from eta311.errors import TooManyRequests
from eta311.plans import Plan
from eta311.web import metrics
from eta311.web.gate import sqlite_storage  # noqa: F401 - registers the sqlite:// storage with limits
from eta311.web.gate.redis import RedisBreaker, is_redis_url, redis_options

log = logging.getLogger(__name__)


def local_counter_uri(port: str) -> str:
    """One SQLite file per served port in shared memory: every worker of this server counts in it."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return f"sqlite:///{folder}/eta311-limits-{port}.sqlite"


class Limiter:
    """Fixed-window counters in a `limits` storage for a plan's burst window and its day; fails open."""

    def __init__(self, storage_uri: str, breaker: RedisBreaker | None = None) -> None:
        options = redis_options(storage_uri) if is_redis_url(storage_uri) else {}
        self.storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
        self.storage_uri = storage_uri.split("@")[-1]  # never log a password
        self.on_redis = is_redis_url(storage_uri)
        # On Redis, the gate's breaker: a failed key lookup skips the counters too, and the reverse.
        self.breaker = breaker if breaker is not None and self.on_redis else RedisBreaker()
        self.last_error: str | None = None

    def hit(self, identity: str, plan: Plan) -> dict[str, str]:
        """Count one request; the rate-limit headers, or TooManyRequests. Storage down: allowed, logged."""
        if self.breaker.skipping:
            self.last_error = (
                self.last_error or f"rate-limit storage {self.storage_uri} skipped: {self.breaker.last_error}"
            )
            return {}
        rate = RateLimitItemPerSecond(plan.burst, plan.rate_window_seconds)
        quota = RateLimitItemPerDay(plan.quota)
        keys = {rate: rate.key_for(identity), quota: quota.key_for(identity)}
        try:
            # FixedWindowRateLimiter.hit is exactly this incr; the counts it returns also give the
            # remaining requests, so a request costs 2-3 storage round trips instead of 6.
            counts = {rate: self.storage.incr(keys[rate], rate.get_expiry())}
            if counts[rate] <= rate.amount:  # a request refused by the rate does not eat the quota
                counts[quota] = self.storage.incr(keys[quota], quota.get_expiry())
            item = next((i for i in (rate, quota) if counts.get(i, 0) > i.amount), None)
            tightest = item or min(counts, key=lambda i: (i.amount - counts[i]) / i.amount)
            reset_time = self.storage.get_expiry(keys[tightest])
        except StorageError as exc:
            if self.on_redis:
                metrics.redis_error("limits")
            self.last_error = f"rate-limit storage {self.storage_uri} unreachable: {exc}"
            self.breaker.failed(self.last_error)
            log.warning("%s; limits are off for %.0f s", self.last_error, self.breaker.retry_after)
            return {}
        self.last_error = None
        remaining = max(0, tightest.amount - counts[tightest])
        reset = max(0, math.ceil(reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(tightest.amount),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{rate.amount};w={rate.get_expiry()}, {quota.amount};w={quota.get_expiry()}",
            "X-RateLimit-Limit": str(tightest.amount),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(reset_time)),
        }
        if item is not None:
            metrics.rate_limited(plan.name, "rate" if item is rate else "quota")
        if item is rate:
            raise TooManyRequests(
                f"Rate limit exceeded: {plan.burst} requests per {plan.rate_window_seconds} s on the {plan.name} plan",
                max(reset, 1),
                headers=headers,
            )
        if item is quota:
            raise TooManyRequests(
                f"Daily quota of {plan.quota} requests used up on the {plan.name} plan", max(reset, 1), headers=headers
            )
        return headers
