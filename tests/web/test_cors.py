"""CORS: allowed origins from CORS_ORIGINS, preflights answered before the key check, limits readable."""

from __future__ import annotations

import pytest

from eta311.plans import PLANS
from eta311.settings import Settings, SettingsError
from eta311.web.app import create_app
from eta311.web.cors import ALLOWED_HEADERS
from eta311.web.gate.keys import FileKeys, new_key

SITE = "https://maps.example.org"
PREFLIGHT = {"Origin": SITE, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}


def make_client(published, tmp_path, origins: tuple[str, ...], keys: bool = False):
    store, _ = published
    extra = {}
    key = None
    if keys:
        key, record = new_key("cors", PLANS["standard"])
        FileKeys(tmp_path / "keys.json").put(record)
        extra = {"api_keys_file": str(tmp_path / "keys.json"), "require_api_keys": True}
    settings = Settings(
        model_uri=str(store.root),
        fallback_uri=None,
        reload_interval_seconds=0,
        cors_origins=origins,
        rate_limit_storage_uri=f"memory://{tmp_path.name}",
        **extra,
    )
    return create_app(settings).test_client(), key


def test_no_origins_by_default_means_no_cors_headers(published, tmp_path):
    client, _ = make_client(published, tmp_path, ())
    reply = client.get("/predict/residential", headers={"Origin": SITE})
    assert reply.status_code == 200 and "Access-Control-Allow-Origin" not in reply.headers
    assert "Access-Control-Allow-Origin" not in client.options("/predict/residential", headers=PREFLIGHT).headers


def test_preflight_is_answered_before_the_key_check(published, tmp_path):
    client, key = make_client(published, tmp_path, (SITE,), keys=True)
    reply = client.options("/predict/residential", headers=PREFLIGHT)
    assert reply.status_code == 204
    assert reply.headers["Access-Control-Allow-Origin"] == SITE
    assert reply.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert reply.headers["Access-Control-Allow-Headers"] == ALLOWED_HEADERS
    assert {"x-api-key", "authorization", "content-type"} <= {h.strip().lower() for h in ALLOWED_HEADERS.split(",")}
    post = client.options("/predict", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"})
    assert post.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"


def test_answers_and_refusals_carry_the_origin_and_expose_the_limits(published, tmp_path):
    client, key = make_client(published, tmp_path, (SITE,), keys=True)
    keyed = client.get("/predict/residential", headers={"Origin": SITE, "x-api-key": key})
    assert keyed.status_code == 200 and keyed.headers["Access-Control-Allow-Origin"] == SITE
    exposed = {h.strip() for h in keyed.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} <= exposed
    assert "RateLimit-Remaining" in keyed.headers
    assert "Origin" in keyed.headers["Vary"]
    refused = client.get("/predict/residential", headers={"Origin": SITE})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == SITE


def test_an_origin_not_listed_gets_no_cors_headers(published, tmp_path):
    client, _ = make_client(published, tmp_path, (SITE,))
    other = {"Origin": "https://evil.example.com"}
    assert "Access-Control-Allow-Origin" not in client.get("/predict/residential", headers=other).headers
    preflight = client.options("/predict/residential", headers={**PREFLIGHT, **other})
    assert preflight.status_code == 204 and "Access-Control-Allow-Origin" not in preflight.headers


def test_star_allows_any_origin(published, tmp_path):
    client, _ = make_client(published, tmp_path, ("*",))
    reply = client.get("/model", headers={"Origin": "http://localhost:8000"})
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_the_pages_are_not_for_other_origins(published, tmp_path):
    client, _ = make_client(published, tmp_path, ("*",))
    assert "Access-Control-Allow-Origin" not in client.get("/docs", headers={"Origin": SITE}).headers


@pytest.mark.parametrize(
    "raw, origins",
    [("", ()), ("*", ("*",)), ("https://a.org, http://localhost:8000/", ("https://a.org", "http://localhost:8000"))],
)
def test_cors_origins_setting(raw, origins):
    assert Settings.from_env({"CORS_ORIGINS": raw}).cors_origins == origins


@pytest.mark.parametrize("raw", ["a.org", "https://a.org/path"])
def test_cors_origins_setting_refuses_what_is_not_an_origin(raw):
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": raw})
