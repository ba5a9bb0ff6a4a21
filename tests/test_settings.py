"""Settings read from the environment: the defaults, what each variable turns on, and every refusal's message."""

from __future__ import annotations

import pytest

from eta311.settings import BUNDLED_MODELS, Settings, SettingsError


def test_an_empty_environment_gives_the_local_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.model_uri == "data/published" and settings.fallback_uri == str(BUNDLED_MODELS)
    assert not settings.require_api_keys and settings.rate_limit_storage_uri is None and settings.port == "5000"


def test_the_store_sets_where_the_service_looks_unless_model_uri_says_otherwise():
    assert Settings.from_env({"STORE_URI": "s3://bucket/nyc311/"}).model_uri == "s3://bucket/nyc311/published"
    assert Settings.from_env({"STORE_URI": "s3://b/x", "MODEL_URI": "/srv/models"}).model_uri == "/srv/models"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"REDIS_URL": "redis://r:6379"}, {"require_api_keys": True, "rate_limit_storage_uri": "redis://r:6379"}),
        ({"API_KEYS_FILE": "keys.json"}, {"require_api_keys": True, "rate_limit_storage_uri": None}),
        ({"REDIS_URL": "redis://r:6379", "API_KEYS": "off"}, {"require_api_keys": False}),
        ({"RATE_LIMIT_STORAGE_URI": "memory://", "REDIS_URL": "redis://r"}, {"rate_limit_storage_uri": "memory://"}),
        ({"DYNO": "web.1"}, {"trusted_proxy_hops": 1}),
        ({"DYNO": "web.1", "TRUSTED_PROXY_HOPS": "0"}, {"trusted_proxy_hops": 0}),
        ({"BUNDLED_FALLBACK": "0"}, {"fallback_uri": None}),
        ({"ECHO_REQUIRES_KEY": "0"}, {"echo_requires_key": False}),
        ({"LOG_LEVEL": "debug"}, {"log_level": "DEBUG"}),
        ({"METRICS": "off", "METRICS_TOKEN": "t0ken"}, {"observe_requests": False, "metrics_token": "t0ken"}),
        ({"ANONYMOUS_PLAN": "standard"}, {"anonymous_plan": "standard"}),
        (
            {"MAX_BATCH_ROWS": "1", "RELOAD_INTERVAL_SECONDS": "0", "PORT": "8080"},
            {"max_batch_rows": 1, "port": "8080"},
        ),
        (
            {"MAX_BODY_BYTES": "", "AWS_ENDPOINT_URL_S3": ""},
            {"max_body_bytes": 8 * 1024 * 1024, "s3_endpoint_url": None},
        ),
    ],
)
def test_each_variable_sets_what_it_says(env, expected):
    settings = Settings.from_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'VERBOSE'"),
        ({"API_KEYS": "yes"}, "API_KEYS must be on or off, not 'yes'"),
        ({"METRICS": "0"}, "METRICS must be on or off, not '0'"),
        ({"API_KEYS": "on"}, "API_KEYS=on needs REDIS_URL or API_KEYS_FILE to keep the keys in"),
        ({"ANONYMOUS_PLAN": "gold"}, "ANONYMOUS_PLAN must be one of free, standard, partner, not 'gold'"),
        ({"RELOAD_INTERVAL_SECONDS": "soon"}, "RELOAD_INTERVAL_SECONDS must be a whole number, not 'soon'"),
        ({"RELOAD_INTERVAL_SECONDS": "-1"}, "RELOAD_INTERVAL_SECONDS must be at least 0, not -1"),
        ({"MAX_BODY_BYTES": "8MB"}, "MAX_BODY_BYTES must be a whole number, not '8MB'"),
        ({"MAX_BODY_BYTES": "1023"}, "MAX_BODY_BYTES must be at least 1024, not 1023"),
        ({"MAX_DECODED_BYTES": "1.5"}, "MAX_DECODED_BYTES must be a whole number, not '1.5'"),
        ({"MAX_DECODED_BYTES": "100"}, "MAX_DECODED_BYTES must be at least 1024, not 100"),
        ({"MAX_BATCH_ROWS": "0"}, "MAX_BATCH_ROWS must be at least 1, not 0"),
        ({"TRUSTED_PROXY_HOPS": "-1"}, "TRUSTED_PROXY_HOPS must be at least 0, not -1"),
        ({"DYNO": "web.1", "TRUSTED_PROXY_HOPS": "one"}, "TRUSTED_PROXY_HOPS must be a whole number, not 'one'"),
    ],
)
def test_each_bad_value_is_refused_with_its_message(env, message):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message


def test_the_service_refuses_to_start_on_a_bad_setting(monkeypatch):
    from eta311.web.app import create_app

    monkeypatch.setenv("MAX_BATCH_ROWS", "none")
    with pytest.raises(SettingsError, match="MAX_BATCH_ROWS must be a whole number, not 'none'"):
        create_app()
