"""Who may call: the key a request presents (or its client address), checked and counted against its plan."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from eta311.errors import Forbidden, Unauthorized
from eta311.logfmt import annotate
from eta311.plans import PLANS, Plan
from eta311.settings import Settings
from eta311.web import metrics
from eta311.web.gate.keys import KEY_PATTERN, KeyStore, digest, open_key_store
from eta311.web.gate.limiter import Limiter, local_counter_uri
from eta311.web.gate.redis import RedisBreaker, redis_client

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from Authorization: Bearer, else from x-api-key.

    Bearer first: behind API Gateway's own keys (api_key_required), x-api-key carries the gateway's key,
    so a client of both sends the service's key as a Bearer token.
    """
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    key = value.strip() if scheme.lower() == "bearer" else None
    return key or headers.get("x-api-key") or None


def client_ip(forwarded_for: str | None, remote_addr: str | None, trusted_hops: int) -> str:
    """Heroku's router appends the address it saw to X-Forwarded-For; anything left of that is the client's say-so."""
    if trusted_hops and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= trusted_hops:
            return hops[-trusted_hops]
    return remote_addr or "unknown"


class Gate:
    """Decides each request: which key (or client address) it is, whether it may pass, its rate-limit headers."""

    def __init__(
        self,
        keys: KeyStore | None,
        limiter: Limiter | None,
        anonymous_plan: Plan | None,
        trusted_hops: int,
        redis: redis.Redis | None = None,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self.keys = keys
        self.redis = redis
        self.breaker = breaker or RedisBreaker()
        self.limiter = limiter
        self.anonymous_plan = anonymous_plan
        self.trusted_hops = trusted_hops

    @property
    def keys_required(self) -> bool:
        return self.keys is not None

    @property
    def admits_everyone(self) -> bool:
        """True when admit() passes every request and adds no headers: no keys, and no limit on keyless clients."""
        return self.keys is None and (self.limiter is None or self.anonymous_plan is None)

    def redis_status(self) -> str | None:
        """ok / unreachable for /health, when Redis is configured (one PING on the shared client)."""
        if self.redis is None:
            return None
        if self.breaker.skipping:  # a health check must not pay the timeout the requests are spared
            return "unreachable"
        try:
            self.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to answer is 'unreachable'
            metrics.redis_error("health")
            self.breaker.failed(f"Redis PING failed: {exc}")
            return "unreachable"
        self.breaker.succeeded()
        return "ok"

    def admit(self, headers: Mapping[str, str], remote_addr: str | None) -> dict[str, str]:
        """The rate-limit headers for a request that may pass; Unauthorized, Forbidden or TooManyRequests if not."""
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
        annotate(key_id=record.key_id)  # the id, never the key, in the request's log line
        if record.revoked:
            raise Forbidden("This API key was revoked", key_id=record.key_id)
        return self.limiter.hit(f"key:{record.key_id}", record.usage_plan) if self.limiter else {}


def build_gate(settings: Settings) -> Gate:
    """Keys from Redis or a file (or none: open), counters in Redis or a local SQLite file."""
    keys: KeyStore | None = None
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    breaker = RedisBreaker()  # one per process: keys, limits and /health skip a failing Redis together
    if settings.require_api_keys:
        keys = open_key_store(
            settings.redis_url, settings.api_keys_file, redis, breaker, settings.api_key_cache_seconds
        )
    anonymous = PLANS[settings.anonymous_plan] if settings.anonymous_plan else None
    limiter = None
    if keys is not None or anonymous is not None:
        limiter = Limiter(settings.rate_limit_storage_uri or local_counter_uri(settings.port), breaker)
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
    return Gate(keys, limiter, anonymous, settings.trusted_proxy_hops, redis, breaker)
