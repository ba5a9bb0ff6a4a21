"""The one Redis client factory: the options every Redis connection of the service is opened with."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a client is made: a service without Redis never loads the library
    import redis

log = logging.getLogger(__name__)

# Redis is on the request path: a stalled connection must cost a request milliseconds, not seconds.
REDIS_TIMEOUT_SECONDS = 0.25
# After a Redis failure, skip it for a while instead of paying the timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 5.0
# A key record read from Redis is trusted without Redis for this long (API_KEY_CACHE_SECONDS): a
# revocation takes effect within it even while Redis is down or stalled; past it, 503.
KEY_CACHE_SECONDS = 60.0


class RedisBreaker:
    """One per process, shared by the key lookups, the limiter and /health: after any Redis failure
    all of them skip Redis for REDIS_RETRY_AFTER_SECONDS. A stalled Redis then costs one short
    timeout per window in a worker, not one per request, nor one for the key and another for the limit.
    """

    def __init__(self, retry_after: float = REDIS_RETRY_AFTER_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.retry_after = retry_after
        self.clock = clock
        self.failures = 0  # how many times Redis failed (one per window at most, unless calls overlap)
        self.last_error: str | None = None
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def skipping(self) -> bool:
        return self.clock() < self._open_until

    def failed(self, why: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = why
            self._open_until = self.clock() + self.retry_after
        log.warning(
            "Redis unreachable (%s): for %.0f s keys come from this worker's recent copy and limits are off",
            why,
            self.retry_after,
        )

    def succeeded(self) -> None:
        self.last_error = None


def is_redis_url(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


def redis_options(url: str) -> dict[str, object]:
    """Short timeouts; rediss:// (Heroku Key-Value Store) has a self-signed certificate."""
    options: dict[str, object] = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = None
    return options


def redis_client(url: str) -> redis.Redis:
    """A client for url with the service's options (the limits library's counters use the same ones)."""
    import redis

    return redis.Redis.from_url(url, **redis_options(url))
