"""API keys: the record kept of each (never the key), making and revoking them, and the stores that keep them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from eta311.errors import Unavailable
from eta311.plans import Plan
from eta311.settings import SettingsError
from eta311.web import metrics
from eta311.web.gate.redis import KEY_CACHE_SECONDS, RedisBreaker, redis_client

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^eta_([0-9a-f]{8})_[A-Za-z0-9_-]{20,64}$")
REDIS_KEYS_HASH = "eta311:api-keys"


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


class KeyStore(Protocol):
    def get(self, key_id: str) -> KeyRecord | None: ...
    def put(self, record: KeyRecord) -> None: ...
    def all(self) -> list[KeyRecord]: ...


class FileKeys:
    """Key records in one JSON file (no Redis: one machine); re-read when the file changes."""

    def __init__(self, path: str | os.PathLike) -> None:
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


class RedisKeys:
    """Key records in a Redis hash shared by every dyno; a recent local copy answers while Redis is down.

    A copy is trusted for cache_seconds after Redis last confirmed it, so a key revoked before an
    outage stops working within that time even if Redis never answers again; an older or unknown
    key gets 503 until Redis is back.
    """

    def __init__(
        self,
        client: redis.Redis,
        breaker: RedisBreaker | None = None,
        cache_seconds: float = KEY_CACHE_SECONDS,
    ) -> None:
        self.client = client
        self.breaker = breaker or RedisBreaker()
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[KeyRecord, float]] = {}  # key id -> (record, when Redis last confirmed it)
        self._lock = threading.Lock()
        try:
            now = self.breaker.clock()
            self._cache = {r.key_id: (r, now) for r in self.all()}
        except Exception as exc:  # noqa: BLE001 - start without the cache; requests will retry Redis
            metrics.redis_error("keys")
            log.warning("could not load API keys from Redis at start-up: %s", exc)

    def _cached(self, key_id: str, why: str) -> KeyRecord:
        record, confirmed = self._cache.get(key_id, (None, float("-inf")))
        if record is None or self.breaker.clock() - confirmed > self.cache_seconds:
            raise Unavailable(f"API keys cannot be checked right now ({why}); retry shortly")
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        import redis

        if self.breaker.skipping:
            return self._cached(key_id, "Redis is not answering")
        try:
            raw = self.client.hget(REDIS_KEYS_HASH, key_id)
        except redis.RedisError as exc:
            metrics.redis_error("keys")
            self.breaker.failed(f"Redis key lookup failed: {exc}")
            return self._cached(key_id, "Redis is not answering")
        self.breaker.succeeded()
        with self._lock:
            if raw is None:
                self._cache.pop(key_id, None)
                return None
            record = KeyRecord.from_json(raw)
            self._cache[key_id] = (record, self.breaker.clock())
        return record

    def put(self, record: KeyRecord) -> None:
        self.client.hset(REDIS_KEYS_HASH, record.key_id, record.to_json())

    def all(self) -> list[KeyRecord]:
        return sorted(
            (KeyRecord.from_json(v) for v in self.client.hgetall(REDIS_KEYS_HASH).values()), key=lambda r: r.created
        )


def open_key_store(
    redis_url: str | None,
    keys_file: str | None,
    client: redis.Redis | None = None,
    breaker: RedisBreaker | None = None,
    cache_seconds: float = KEY_CACHE_SECONDS,
) -> KeyStore:
    """Where keys are kept: Redis when there is a URL (every dyno shares it), else the keys file (one machine).

    The service passes its shared client (also used by /health); scripts/keys.py lets one be made here.
    """
    if redis_url:
        return RedisKeys(client if client is not None else redis_client(redis_url), breaker, cache_seconds)
    if keys_file:
        return FileKeys(keys_file)
    raise SettingsError("set REDIS_URL or API_KEYS_FILE to say where keys are kept")


def revoke(keys: KeyStore, key_id: str) -> KeyRecord:
    """Mark a key revoked from now on (its record stays, so the 403 can say so); KeyError if there is none."""
    record = keys.get(key_id)
    if record is None:
        raise KeyError(key_id)
    revoked = replace(record, revoked=datetime.now(UTC).isoformat(timespec="seconds"))
    keys.put(revoked)
    return revoked
