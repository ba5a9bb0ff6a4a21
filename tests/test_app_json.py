"""A one-click deploy from app.json, run locally: its settings plus a real Redis answer the first request; then keys go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests
from live import ROOT, procfile_web, redis_server

APP_JSON = json.loads((ROOT / "app.json").read_text())
README = (ROOT / "README.md").read_text()


def deploy_env() -> dict[str, str]:
    """What Heroku sets from app.json: each variable's value (ones without a value stay unset)."""
    return {name: spec["value"] for name, spec in APP_JSON["env"].items() if "value" in spec}


def test_app_json_adds_redis_and_keeps_keys_off_as_the_readme_says():
    assert any(addon["plan"].startswith("heroku-redis") for addon in APP_JSON["addons"])
    env = deploy_env()
    assert env["API_KEYS"] == "off" and "API_KEYS=off" in README
    assert f"ANONYMOUS_PLAN={env['ANONYMOUS_PLAN']}" in README


def test_a_fresh_deploy_answers_the_first_request_then_the_operator_turns_keys_on(tmp_path):
    with redis_server() as (redis_url, _):
        # Heroku's Key-Value Store add-on sets REDIS_URL; a fresh dyno's store folder is empty.
        env = {**deploy_env(), "REDIS_URL": redis_url, "STORE_URI": str(tmp_path / "store")}
        with procfile_web(**env) as (base, _):
            first = requests.get(f"{base}/predict/residential", timeout=10)
            assert first.status_code == 200 and first.json()["status"] == "success"
            assert first.headers["RateLimit-Limit"] == "10"  # the free plan's burst, counted per address in Redis
            assert requests.get(f"{base}/health", timeout=10).json()["api_keys"] == "off"

        made = subprocess.run(
            [sys.executable, "scripts/keys.py", "create", "--name", "me", "--plan", "standard"],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        with procfile_web(**{**env, "API_KEYS": "on"}) as (base, _):  # heroku config:set API_KEYS=on
            assert requests.get(f"{base}/predict/residential", timeout=10).status_code == 401
            keyed = requests.get(f"{base}/predict/residential", headers={"x-api-key": key}, timeout=10)
            assert keyed.status_code == 200 and keyed.headers["RateLimit-Limit"] == "50"  # the standard plan's burst
