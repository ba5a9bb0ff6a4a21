"""The one Redis client factory: the options every Redis connection of the service is opened with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a client is made: a service without Redis never loads the library
    import redis

# Redis is on the request path: a stalled connection must cost a request milliseconds, not seconds.
REDIS_TIMEOUT_SECONDS = 0.25
# After a Redis failure, skip it for a while instead of paying the timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 5.0


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
