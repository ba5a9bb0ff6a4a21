"""Service settings, read from the environment once and checked at start-up."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eta311.plans import PLANS

log = logging.getLogger(__name__)
BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"
# The pipeline's store (STORE_URI): raw days under raw/, what the trigger publishes under published/.
DEFAULT_STORE_URI = "data"


def published_uri(store_uri: str) -> str:
    """Where the trigger publishes in a store, and so where the service looks first."""
    return store_uri.rstrip("/") + "/published"


class SettingsError(ValueError):
    """A setting has a value the service cannot run with; raised before any request is served."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    """CORS_ORIGINS: origins separated by commas or spaces (scheme://host[:port]), or * for any."""
    origins = tuple(o.rstrip("/") for o in raw.replace(",", " ").split())
    for origin in origins:
        if origin != "*" and ("://" not in origin or origin.count("/") != 2):
            raise SettingsError(f"CORS_ORIGINS entries look like https://example.org or *, not {origin!r}")
    return origins


def _trusted_hops(env: Mapping[str, str]) -> int:
    """Heroku's router is one proxy hop, and Heroku sets DYNO in every dyno; elsewhere no proxy is assumed."""
    hops = _int(env, "TRUSTED_PROXY_HOPS", 1 if env.get("DYNO") else 0, 0)
    if hops and not env.get("DYNO"):
        # Without a proxy that appends the real address, X-Forwarded-For is whatever the client
        # says: anyone could reset their per-address limit by sending a new one each time.
        log.warning(
            "TRUSTED_PROXY_HOPS=%d but DYNO is unset: unless %d proxies in front of this server append to"
            " X-Forwarded-For, clients choose the address they are limited by",
            hops,
            hops,
        )
    return hops


@dataclass(frozen=True)
class Settings:
    # Where the service looks for medians.json and model_card.json first...
    model_uri: str = published_uri(DEFAULT_STORE_URI)
    # ...and, for whatever that has not published yet, the model and medians bundled in the repo.
    fallback_uri: str | None = str(BUNDLED_MODELS)
    s3_endpoint_url: str | None = None
    reload_interval_seconds: int = 30
    max_body_bytes: int = 8 * 1024 * 1024
    # 10,000 records of this API are 1-1.5 MB of JSON; 16 MiB keeps a request's decoded bytes (plus
    # the body and the parse) inside the 64 MB a worker may grow by (tests/web/test_hostile.py).
    max_decoded_bytes: int = 16 * 1024 * 1024
    max_batch_rows: int = 10_000
    log_level: str = "INFO"
    # Keys and limits: with REDIS_URL everything is shared by every dyno; without it, API_KEYS_FILE
    # holds the keys and a SQLite file the counters, shared by the workers of one machine.
    redis_url: str | None = None
    api_keys_file: str | None = None
    require_api_keys: bool = False
    echo_requires_key: bool = True
    anonymous_plan: str | None = None
    trusted_proxy_hops: int = 0
    # How long a key record read from Redis is trusted while Redis does not answer (revocations
    # take effect within it even through an outage).
    api_key_cache_seconds: int = 60
    rate_limit_storage_uri: str | None = None
    port: str = "5000"
    # Unset: /metrics is open (a private network or Heroku's metrics drain); set: it needs this bearer token.
    metrics_token: str | None = None
    # Off: no request ids, per-request metrics or request lines; gunicorn.conf.py turns its access log back on.
    observe_requests: bool = True
    # Origins whose pages may call the API from a browser (CORS); empty: none, ("*",): any.
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
        store_uri = env.get("STORE_URI") or DEFAULT_STORE_URI
        redis_url = env.get("REDIS_URL") or None
        api_keys_file = env.get("API_KEYS_FILE") or None
        keys_mode = env.get("API_KEYS", "on" if redis_url or api_keys_file else "off")
        if keys_mode not in ("on", "off"):
            raise SettingsError(f"API_KEYS must be on or off, not {keys_mode!r}")
        if keys_mode == "on" and not (redis_url or api_keys_file):
            raise SettingsError("API_KEYS=on needs REDIS_URL or API_KEYS_FILE to keep the keys in")
        metrics = env.get("METRICS", "on")
        if metrics not in ("on", "off"):
            raise SettingsError(f"METRICS must be on or off, not {metrics!r}")
        anonymous_plan = env.get("ANONYMOUS_PLAN") or None
        if anonymous_plan is not None and anonymous_plan not in PLANS:
            raise SettingsError(f"ANONYMOUS_PLAN must be one of {', '.join(PLANS)}, not {anonymous_plan!r}")
        return cls(
            model_uri=env.get("MODEL_URI") or published_uri(store_uri),
            fallback_uri=str(BUNDLED_MODELS) if env.get("BUNDLED_FALLBACK", "1") != "0" else None,
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or None,
            reload_interval_seconds=_int(env, "RELOAD_INTERVAL_SECONDS", 30, 0),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 8 * 1024 * 1024, 1024),
            max_decoded_bytes=_int(env, "MAX_DECODED_BYTES", 16 * 1024 * 1024, 1024),
            max_batch_rows=_int(env, "MAX_BATCH_ROWS", 10_000, 1),
            log_level=level,
            redis_url=redis_url,
            api_keys_file=api_keys_file,
            require_api_keys=keys_mode == "on",
            echo_requires_key=env.get("ECHO_REQUIRES_KEY", "1") != "0",
            anonymous_plan=anonymous_plan,
            # Heroku's router is one proxy hop, and Heroku sets DYNO in every dyno.
            trusted_proxy_hops=_trusted_hops(env),
            api_key_cache_seconds=_int(env, "API_KEY_CACHE_SECONDS", 60, 1),
            rate_limit_storage_uri=env.get("RATE_LIMIT_STORAGE_URI") or redis_url,
            port=env.get("PORT") or "5000",
            metrics_token=env.get("METRICS_TOKEN") or None,
            observe_requests=metrics == "on",
            cors_origins=_origins(env.get("CORS_ORIGINS", "")),
        )
