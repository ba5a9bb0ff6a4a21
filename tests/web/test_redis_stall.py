"""A stalled Redis (issue #12): one short timeout per skip window for keys and limits together; revocations still land."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import pytest
from live import redis_server
from test_gate import ROAD, add_key, settings_for

from eta311.errors import Unavailable
from eta311.plans import Plan
from eta311.web.app import create_app
from eta311.web.gate.keys import RedisKeys, revoke
from eta311.web.gate.redis import RedisBreaker, redis_client


@pytest.fixture
def redis_url():
    with redis_server() as (url, process):
        yield url, process


@contextmanager
def stalled(process):
    """redis-server stopped, not killed: connections are accepted and never answered, as a stalled Redis does."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def test_a_stall_costs_one_timeout_a_window_for_keys_and_limits_alike(published, tmp_path, redis_url):
    url, process = redis_url
    key, _ = add_key(RedisKeys(redis_client(url)), plan=Plan("tiny", rate=100, burst=500, quota=100_000))
    app = create_app(
        settings_for(published, tmp_path, redis_url=url, require_api_keys=True, rate_limit_storage_uri=url)
    )
    gate = app.extensions["gate"]
    client = app.test_client()
    assert client.get(ROAD, headers={"x-api-key": key}).status_code == 200
    assert gate.breaker is gate.limiter.breaker is gate.keys.breaker  # one window for all of them
    gate.breaker.retry_after = 600  # the whole test inside one window, however slow the machine
    with stalled(process):
        codes = [client.get(ROAD, headers={"x-api-key": key}).status_code for _ in range(20)]
        health = client.get("/health").get_json()
    assert codes == [200] * 20  # a key seen moments ago is served from the worker's copy
    assert gate.breaker.failures == 1  # the first key lookup timed out; nothing after it asked Redis
    assert health["status"] == "degraded" and health["redis"] == "unreachable"


def test_a_key_revoked_before_the_stall_stops_working_within_the_cache_time(redis_url):
    url, process = redis_url
    now = [1000.0]
    breaker = RedisBreaker(retry_after=5, clock=lambda: now[0])
    keys = RedisKeys(redis_client(url), breaker, cache_seconds=60)
    _, record = add_key(keys)
    assert keys.get(record.key_id) == record  # confirmed by Redis at t=1000
    revoke(RedisKeys(redis_client(url)), record.key_id)  # by the operator, through another process
    with stalled(process):
        now[0] += 30
        assert keys.get(record.key_id).revoked is None  # within the cache time the old copy still answers
        now[0] += 31  # 61 s after Redis last confirmed it
        with pytest.raises(Unavailable):
            keys.get(record.key_id)


def test_an_unknown_key_during_the_stall_is_a_503_at_once(redis_url):
    url, process = redis_url
    breaker = RedisBreaker(retry_after=600)
    keys = RedisKeys(redis_client(url), breaker)
    with stalled(process):
        for key_id in ("0123abcd", "89abcdef", "deadbeef"):
            with pytest.raises(Unavailable):
                keys.get(key_id)
    assert breaker.failures == 1
