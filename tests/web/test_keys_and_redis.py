"""The gate's parts alone: where keys are kept (one choice for the service and scripts/keys.py) and Redis options."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from live import ROOT

from eta311.plans import PLANS
from eta311.settings import SettingsError
from eta311.web.gate.keys import FileKeys, RedisKeys, new_key, open_key_store, revoke
from eta311.web.gate.limiter import Limiter
from eta311.web.gate.redis import REDIS_TIMEOUT_SECONDS, redis_client


def test_redis_when_there_is_a_url_else_the_keys_file(tmp_path):
    client = redis_client("redis://127.0.0.1:1/0")  # never connected: choosing a store makes no request
    assert isinstance(open_key_store(None, str(tmp_path / "keys.json")), FileKeys)
    chosen = open_key_store("redis://127.0.0.1:1/0", str(tmp_path / "keys.json"), client)
    assert isinstance(chosen, RedisKeys) and chosen.client is client


def test_no_place_for_keys_is_refused_with_what_to_set():
    with pytest.raises(SettingsError, match="^set REDIS_URL or API_KEYS_FILE to say where keys are kept$"):
        open_key_store(None, None)


def test_the_keys_script_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "API_KEYS_FILE")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "keys.py"), "list"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "set REDIS_URL or API_KEYS_FILE to say where keys are kept" in done.stderr


@pytest.mark.parametrize(
    "url, verifies_certificate",
    [("redis://127.0.0.1:1/0", None), ("rediss://user:secret@127.0.0.1:1/0", False)],
)
def test_keys_and_counters_connect_with_the_same_options(url, verifies_certificate):
    """Both Redis connections (keys, and the limits library's counters) come from one set of options."""
    counters = Limiter(url).storage.storage.connection_pool
    for pool in (redis_client(url).connection_pool, counters):
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == REDIS_TIMEOUT_SECONDS
        if verifies_certificate is None:
            assert "ssl_cert_reqs" not in kwargs
        else:  # Heroku Key-Value Store's certificate is self-signed
            assert kwargs["ssl_cert_reqs"] is None
    assert "secret" not in Limiter(url).storage_uri  # never logged


def test_a_file_store_keeps_digests_only_and_sees_revocation(tmp_path):
    keys = FileKeys(tmp_path / "keys.json")
    key, record = new_key("tester", PLANS["free"])
    keys.put(record)
    assert key not in (tmp_path / "keys.json").read_text() and keys.get(record.key_id) == record
    revoke(keys, record.key_id)
    assert FileKeys(tmp_path / "keys.json").get(record.key_id).revoked is not None
    with pytest.raises(KeyError):
        revoke(keys, "ffffffff")
