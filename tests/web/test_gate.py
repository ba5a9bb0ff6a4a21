"""API keys, usage plans and client addresses, in-process on a keys file and on a real redis-server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest
from live import ROOT, redis_server

from eta311.plans import PLANS, Plan
from eta311.settings import Settings
from eta311.web.app import create_app
from eta311.web.gate.gate import client_ip
from eta311.web.gate.keys import FileKeys, RedisKeys, new_key, revoke
from eta311.web.gate.redis import redis_client

ROAD = "/predict/residential"


def settings_for(published, tmp_path, **overrides) -> Settings:
    store, _ = published
    base = Settings(
        model_uri=str(store.root),
        fallback_uri=None,
        reload_interval_seconds=0,
        rate_limit_storage_uri=f"sqlite:///{tmp_path}/limits.sqlite",
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def keys(tmp_path):
    return FileKeys(tmp_path / "keys.json")


TEST_PLAN = Plan("test", rate=100, burst=100, quota=1000)


def add_key(keys, name="tester", plan=TEST_PLAN):
    key, record = new_key(name, plan)
    keys.put(record)
    return key, record


@pytest.fixture
def keyed(published, tmp_path, keys):
    app = create_app(settings_for(published, tmp_path, api_keys_file=str(keys.path), require_api_keys=True))
    return app.test_client()


def test_open_by_default_and_says_so(published, tmp_path, caplog):
    client = create_app(settings_for(published, tmp_path)).test_client()
    assert client.get(ROAD).status_code == 200
    assert client.get("/health").json["api_keys"] == "off"
    assert "API keys are off: the service is open to anyone" in caplog.text


@pytest.mark.parametrize(
    "headers, status, problem",
    [
        ({}, 401, "Send an API key in the x-api-key header (or Authorization: Bearer)"),
        ({"x-api-key": "nonsense"}, 401, "Unknown API key"),
        ({"x-api-key": "eta_0123abcd_" + "x" * 24}, 401, "Unknown API key"),
        (
            {"Authorization": "Basic dXNlcjpwYXNz"},
            401,
            "Send an API key in the x-api-key header (or Authorization: Bearer)",
        ),
    ],
)
def test_missing_or_unknown_keys_are_401(keyed, keys, headers, status, problem):
    add_key(keys)
    reply = keyed.get(ROAD, headers=headers)
    assert reply.status_code == status
    assert reply.json == {"status": "failure", "success": False, "problem": problem}
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="311 ETA"'  # RFC 9110: a 401 names its scheme


def test_a_key_in_either_header_passes_with_rate_limit_headers(keyed, keys):
    key, _ = add_key(keys)
    for headers in ({"x-api-key": key}, {"Authorization": f"Bearer {key}"}):
        reply = keyed.get(ROAD, headers=headers)
        assert reply.status_code == 200 and reply.json["status"] == "success"
        assert (
            reply.headers["RateLimit-Limit"] == "100" and reply.headers["RateLimit-Policy"] == "100;w=1, 1000;w=86400"
        )
    assert keyed.get(ROAD, headers={"x-api-key": key}).headers["RateLimit-Remaining"] == "97"


def test_a_key_with_a_right_id_but_wrong_secret_is_refused(keyed, keys):
    key, record = add_key(keys)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert keyed.get(ROAD, headers={"x-api-key": forged}).status_code == 401


def test_revoked_key_is_403(keyed, keys):
    key, record = add_key(keys)
    assert keyed.get(ROAD, headers={"x-api-key": key}).status_code == 200
    revoke(keys, record.key_id)
    reply = keyed.get(ROAD, headers={"x-api-key": key})
    assert reply.status_code == 403 and reply.json["problem"] == "This API key was revoked"


def test_discovery_and_health_stay_open_and_echo_is_configurable(published, tmp_path, keyed, keys):
    add_key(keys)
    assert keyed.get("/health").status_code == 200 and keyed.get("/").status_code == 200
    assert keyed.get("/openapi.json").status_code == 200
    assert keyed.get("/echo?msg=hi").status_code == 401
    assert keyed.get("/no/such/route").status_code == 404
    open_echo = create_app(
        settings_for(published, tmp_path, api_keys_file=str(keys.path), require_api_keys=True, echo_requires_key=False)
    ).test_client()
    assert open_echo.get("/echo?msg=hi").json == {"response": "hi", "success": True}
    assert open_echo.get(ROAD).status_code == 401


def test_burst_then_429_with_retry_after(keyed, keys):
    key, _ = add_key(keys, plan=Plan("tiny", rate=1, burst=3, quota=1000))
    answers = [keyed.get(ROAD, headers={"x-api-key": key}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert refused.json["problem"] == "Rate limit exceeded: 3 requests per 3 s on the tiny plan"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3 and refused.json["retry_after"] == int(
        refused.headers["Retry-After"]
    )
    assert refused.headers["RateLimit-Remaining"] == "0" and refused.headers["X-RateLimit-Limit"] == "3"


def test_daily_quota(keyed, keys):
    key, _ = add_key(keys, plan=Plan("quota", rate=1000, burst=1000, quota=4))
    codes = [keyed.get(ROAD, headers={"x-api-key": key}).status_code for _ in range(6)]
    assert codes == [200] * 4 + [429] * 2
    refused = keyed.get(ROAD, headers={"x-api-key": key})
    assert refused.json["problem"] == "Daily quota of 4 requests used up on the quota plan"
    assert 86000 < int(refused.headers["Retry-After"]) <= 86400


def test_keys_do_not_share_limits(keyed, keys):
    first, _ = add_key(keys, plan=Plan("tiny", rate=1, burst=2, quota=1000))
    second, _ = add_key(keys, plan=Plan("tiny", rate=1, burst=2, quota=1000))
    assert [keyed.get(ROAD, headers={"x-api-key": first}).status_code for _ in range(3)] == [200, 200, 429]
    assert keyed.get(ROAD, headers={"x-api-key": second}).status_code == 200


@pytest.mark.parametrize(
    "forwarded, remote, hops, expected",
    [
        ("203.0.113.9", "10.1.2.3", 1, "203.0.113.9"),
        ("1.1.1.1, 203.0.113.9", "10.1.2.3", 1, "203.0.113.9"),  # the left part is whatever the client sent
        ("1.1.1.1, 203.0.113.9", "10.1.2.3", 2, "1.1.1.1"),
        ("203.0.113.9", "10.1.2.3", 0, "10.1.2.3"),  # no proxy in front: the header is not trusted at all
        (None, "10.1.2.3", 1, "10.1.2.3"),
    ],
)
def test_client_ip_from_the_routers_forwarded_for(forwarded, remote, hops, expected):
    assert client_ip(forwarded, remote, hops) == expected


def test_anonymous_limits_follow_the_address_heroku_appended(published, tmp_path):
    app = create_app(settings_for(published, tmp_path, anonymous_plan="free", trusted_proxy_hops=1))
    client = app.test_client()
    burst = PLANS["free"].burst
    codes = [
        client.get(ROAD, headers={"X-Forwarded-For": f"{i}.9.9.9, 198.51.100.7"}).status_code for i in range(burst + 1)
    ]
    assert codes == [200] * burst + [429]  # a spoofed left part does not make a new client
    assert client.get(ROAD, headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 200


def test_keys_script_creates_lists_and_revokes(tmp_path):
    env = {**os.environ, "API_KEYS_FILE": str(tmp_path / "keys.json")}
    script = [sys.executable, str(ROOT / "scripts" / "keys.py")]
    made = subprocess.run(
        [*script, "create", "--name", "Acme", "--plan", "standard", "--quota", "500"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = made.strip().splitlines()[-1]
    assert key.startswith("eta_") and "20/s, burst 50, 500/day" in made
    stored = (tmp_path / "keys.json").read_text()
    assert key not in stored and key.split("_")[1] in stored  # only the id and the digest are kept
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"
    listing = subprocess.run([*script, "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "Acme" in listing and "active" in listing
    subprocess.run([*script, "revoke", key.split("_")[1]], env=env, check=True, capture_output=True)
    assert "revoked" in subprocess.run([*script, "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert subprocess.run([*script, "revoke", "ffffffff"], env=env, capture_output=True).returncode == 1


@pytest.fixture
def redis_url():
    with redis_server() as (url, process):
        yield url, process


def test_keys_and_limits_in_redis(published, tmp_path, redis_url):
    url, _ = redis_url
    keys = RedisKeys(redis_client(url))
    key, record = add_key(keys, plan=Plan("tiny", rate=1, burst=3, quota=1000))
    client = create_app(
        settings_for(published, tmp_path, redis_url=url, require_api_keys=True, rate_limit_storage_uri=url)
    ).test_client()
    assert [client.get(ROAD, headers={"x-api-key": key}).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get("/health").json["redis"] == "ok"
    revoke(keys, record.key_id)
    assert client.get(ROAD, headers={"x-api-key": key}).status_code == 403  # revocation is seen at once


def test_redis_down_known_keys_pass_limits_fail_open_health_degraded(published, tmp_path, redis_url, caplog):
    url, process = redis_url
    keys = RedisKeys(redis_client(url))
    key, _ = add_key(keys, plan=Plan("tiny", rate=1, burst=2, quota=1000))
    unseen, _ = add_key(keys, name="never used")
    client = create_app(
        settings_for(published, tmp_path, redis_url=url, require_api_keys=True, rate_limit_storage_uri=url)
    ).test_client()
    assert client.get(ROAD, headers={"x-api-key": key}).status_code == 200
    process.kill()
    process.wait()
    started = time.monotonic()
    codes = [client.get(ROAD, headers={"x-api-key": key}).status_code for _ in range(5)]
    elapsed = time.monotonic() - started
    assert codes == [200] * 5  # over its burst of 2, but limits fail open while Redis is away
    assert elapsed < 3, "no request may hang on a dead Redis"
    assert "unreachable" in caplog.text and "limits are off" in caplog.text
    health = client.get("/health").json
    assert health["status"] == "degraded" and health["redis"] == "unreachable"
    assert client.get(ROAD, headers={"x-api-key": "eta_0123abcd_" + "y" * 24}).status_code == 503
