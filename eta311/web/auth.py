"""API keys and usage plans: who may call, how fast and how much, shared through Redis or one machine's files."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from limits import RateLimitItemPerDay, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string

from eta311.errors import Forbidden, TooManyRequests, Unauthorized, Unavailable
from eta311.plans import Plan
from eta311.web import ratelimit_sqlite  # noqa: F401 - registers the sqlite:// storage with limits

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^eta_([0-9a-f]{8})_[A-Za-z0-9_-]{20,64}$")
REDIS_KEYS_HASH = "eta311:api-keys"
# Redis is on the request path: a stalled connection must cost a request milliseconds, not seconds.
REDIS_TIMEOUT_SECONDS = 0.25
# After a Redis failure, skip it for a while instead of paying the timeout on every request.
REDIS_RETRY_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class KeyRecord:
    """What the service keeps of a key: its id, the sha256 of the whole key, and its plan. Never the key."""

    key_id: str
    digest: str
    name: str
    plan: str
    rate: float
    burst: int
    quota: int
    created: str
    revoked: str | None = None

    @property
    def usage_plan(self) -> Plan:
        return Plan(self.plan, self.rate, self.burst, self.quota)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> KeyRecord:
        return cls(**json.loads(text))


def digest(key: str) -> str:
    # Keys are 144 random bits, so a plain sha256 is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, plan: Plan) -> tuple[str, KeyRecord]:
    """A fresh key (shown once) and the record that is stored for it."""
    key_id = secrets.token_hex(4)
    key = f"eta_{key_id}_{secrets.token_urlsafe(18)}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return key, KeyRecord(key_id, digest(key), name, plan.name, plan.rate, plan.burst, plan.quota, now)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from x-api-key, or from Authorization: Bearer."""
    key = headers.get("x-api-key")
    if not key:
        scheme, _, value = (headers.get("Authorization") or "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    return key or None


def client_ip(forwarded_for: str | None, remote_addr: str | None, trusted_hops: int) -> str:
    """Heroku's router appends the address it saw to X-Forwarded-For; anything left of that is the client's say-so."""
    if trusted_hops and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= trusted_hops:
            return hops[-trusted_hops]
    return remote_addr or "unknown"


class KeyStore(Protocol):
    def get(self, key_id: str) -> KeyRecord | None: ...
    def put(self, record: KeyRecord) -> None: ...
    def all(self) -> list[KeyRecord]: ...


class FileKeys:
    """Key records in one JSON file (no Redis: one machine); re-read when the file changes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._records: dict[str, KeyRecord] = {}

    def _load(self) -> dict[str, KeyRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            self._records = {r["key_id"]: KeyRecord(**r) for r in json.loads(self.path.read_text() or "[]")}
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._records

    def get(self, key_id: str) -> KeyRecord | None:
        return self._load().get(key_id)

    def all(self) -> list[KeyRecord]:
        return sorted(self._load().values(), key=lambda r: r.created)

    def put(self, record: KeyRecord) -> None:
        records = {**self._load(), record.key_id: record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump([asdict(r) for r in records.values()], handle, indent=2, sort_keys=True)
        os.chmod(temp, 0o600)  # digests only, but still nobody else's business
        os.replace(temp, self.path)


def redis_client(url: str):
    """A client with short timeouts; rediss:// (Heroku Key-Value Store) has a self-signed certificate."""
    import redis

    options = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = None
    return redis.Redis.from_url(url, **options)


class RedisKeys:
    """Key records in a Redis hash shared by every dyno; a local copy answers while Redis is down."""

    def __init__(self, client):
        self.client = client
        self._cache: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()
        try:
            self._cache = {r.key_id: r for r in self.all()}
        except Exception as exc:  # noqa: BLE001 - start without the cache; requests will retry Redis
            log.warning("could not load API keys from Redis at start-up: %s", exc)

    def get(self, key_id: str) -> KeyRecord | None:
        import redis

        try:
            raw = self.client.hget(REDIS_KEYS_HASH, key_id)
        except redis.RedisError as exc:
            if key_id in self._cache:
                return self._cache[key_id]
            raise Unavailable("API keys cannot be checked right now; retry shortly") from exc
        with self._lock:
            if raw is None:
                self._cache.pop(key_id, None)
                return None
            record = self._cache[key_id] = KeyRecord.from_json(raw)
        return record

    def put(self, record: KeyRecord) -> None:
        self.client.hset(REDIS_KEYS_HASH, record.key_id, record.to_json())

    def all(self) -> list[KeyRecord]:
        return sorted(
            (KeyRecord.from_json(v) for v in self.client.hgetall(REDIS_KEYS_HASH).values()), key=lambda r: r.created
        )


def revoke(keys: KeyStore, key_id: str) -> KeyRecord:
    record = keys.get(key_id)
    if record is None:
        raise KeyError(key_id)
    revoked = replace(record, revoked=datetime.now(UTC).isoformat(timespec="seconds"))
    keys.put(revoked)
    return revoked


class Limiter:
    """Fixed-window counters in a `limits` storage for a plan's burst window and its day; fails open."""

    def __init__(self, storage_uri: str):
        options = {}
        if storage_uri.startswith(("redis://", "rediss://")):
            options = {"socket_timeout": REDIS_TIMEOUT_SECONDS, "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
            if storage_uri.startswith("rediss://"):
                options["ssl_cert_reqs"] = None
        self.storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
        self.storage_uri = storage_uri.split("@")[-1]  # never log a password
        self._skip_until = 0.0
        self.last_error: str | None = None

    def hit(self, identity: str, plan: Plan) -> dict[str, str]:
        """Count one request; the rate-limit headers, or TooManyRequests. Storage down: allowed, logged."""
        if time.monotonic() < self._skip_until:
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
            self._skip_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
            self.last_error = f"rate-limit storage {self.storage_uri} unreachable: {exc}"
            log.warning("%s; limits are off for %.0f s", self.last_error, REDIS_RETRY_AFTER_SECONDS)
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


class Gate:
    """Decides each request: which key (or client address) it is, whether it may pass, its rate-limit headers."""

    def __init__(
        self, keys: KeyStore | None, limiter: Limiter | None, anonymous_plan: Plan | None, trusted_hops: int, redis=None
    ):
        self.keys = keys
        self.redis = redis
        self.limiter = limiter
        self.anonymous_plan = anonymous_plan
        self.trusted_hops = trusted_hops

    @property
    def keys_required(self) -> bool:
        return self.keys is not None

    def redis_status(self) -> str | None:
        """ok / unreachable for /health, when Redis is configured (one PING on the shared client)."""
        if self.redis is None:
            return None
        try:
            self.redis.ping()
            return "ok"
        except Exception:  # noqa: BLE001 - any failure to answer is 'unreachable'
            return "unreachable"

    def admit(self, headers: Mapping[str, str], remote_addr: str | None) -> dict[str, str]:
        if self.keys is None:
            if self.limiter is None or self.anonymous_plan is None:
                return {}
            ip = client_ip(headers.get("X-Forwarded-For"), remote_addr, self.trusted_hops)
            return self.limiter.hit(f"ip:{ip}", self.anonymous_plan)
        key = presented_key(headers)
        if key is None:
            raise Unauthorized("Send an API key in the x-api-key header (or Authorization: Bearer)")
        match = KEY_PATTERN.match(key)
        record = self.keys.get(match.group(1)) if match else None
        if record is None or not hmac.compare_digest(record.digest, digest(key)):
            raise Unauthorized("Unknown API key")
        if record.revoked:
            raise Forbidden("This API key was revoked", key_id=record.key_id)
        return self.limiter.hit(f"key:{record.key_id}", record.usage_plan) if self.limiter else {}


def local_counter_uri(port: str) -> str:
    """One SQLite file per served port in shared memory: every worker of this server counts in it."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return f"sqlite:///{folder}/eta311-limits-{port}.sqlite"


def build_gate(settings) -> Gate:
    """Keys from Redis or a file (or none: open), counters in Redis or a local SQLite file."""
    from eta311.plans import PLANS

    keys: KeyStore | None = None
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    if settings.require_api_keys:
        keys = RedisKeys(redis) if redis is not None else FileKeys(settings.api_keys_file)
    anonymous = PLANS[settings.anonymous_plan] if settings.anonymous_plan else None
    limiter = None
    if keys is not None or anonymous is not None:
        limiter = Limiter(settings.rate_limit_storage_uri or local_counter_uri(settings.port))
    if keys is None:
        log.warning(
            "API keys are off: the service is open to anyone%s. Set REDIS_URL or API_KEYS_FILE to require keys.",
            f" (anonymous clients limited per address to the {anonymous.name} plan)" if anonymous else "",
        )
    else:
        log.info(
            "API keys required (kept in %s); limits counted in %s",
            "Redis" if settings.redis_url else settings.api_keys_file,
            limiter.storage_uri,
        )
    return Gate(keys, limiter, anonymous, settings.trusted_proxy_hops, redis)
