"""Service settings, read from the environment once and checked at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"


def published_uri(store_uri: str) -> str:
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


@dataclass(frozen=True)
class Settings:
    # The pipeline's store: raw days under raw/, what the trigger publishes under published/.
    store_uri: str = "data"
    # Where the service looks for medians.json and model_card.json first...
    model_uri: str = "data/published"
    # ...and, for whatever that has not published yet, the model and medians bundled in the repo.
    fallback_uri: str | None = str(BUNDLED_MODELS)
    s3_endpoint_url: str | None = None
    reload_interval_seconds: int = 30
    max_body_bytes: int = 8 * 1024 * 1024
    max_decoded_bytes: int = 32 * 1024 * 1024
    max_batch_rows: int = 10_000
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
        store_uri = env.get("STORE_URI") or "data"
        return cls(
            store_uri=store_uri,
            model_uri=env.get("MODEL_URI") or published_uri(store_uri),
            fallback_uri=str(BUNDLED_MODELS) if env.get("BUNDLED_FALLBACK", "1") != "0" else None,
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or None,
            reload_interval_seconds=_int(env, "RELOAD_INTERVAL_SECONDS", 30, 0),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 8 * 1024 * 1024, 1024),
            max_decoded_bytes=_int(env, "MAX_DECODED_BYTES", 32 * 1024 * 1024, 1024),
            max_batch_rows=_int(env, "MAX_BATCH_ROWS", 10_000, 1),
            log_level=level,
        )
