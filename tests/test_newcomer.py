"""What a newcomer and the seed's own clients try first: GET with a JSON body, python echo.py, the scripts."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys

import pytest
import requests
from live import ROOT, free_port, output, spawn, stop, wait_until_ready
from test_api import real_png

BROOKLYN = {"lat": 40.636626, "lon": -73.951694, "date": "2019-06-08 00:00:09"}


# --- GET with a JSON body, as the seed's echo client sends it ---------------------------------------


def test_echo_get_with_a_json_body(client):
    assert client.get("/echo", json={"msg": "Hello"}).get_json() == {"response": "Hello", "success": True}


def test_echo_get_with_a_base64_image_body_as_the_seed_client_sends(client):
    sent = base64.b64encode(real_png()).decode()
    reply = client.get("/echo", json={"msg": sent, "encoding": "base64"}).get_json()
    assert reply == {"response": sent, "success": True}
    assert client.get("/echo", json={"msg": "not*base64", "encoding": "base64"}).status_code == 400


def test_echo_query_wins_over_the_body(client):
    assert client.get("/echo?msg=query", json={"msg": "body"}).get_json()["response"] == "query"


def test_echo_get_with_a_body_that_is_not_json_answers_from_the_query_as_before(client):
    reply = client.get("/echo?msg=a", data="msg=b", content_type="application/x-www-form-urlencoded")
    assert reply.get_json()["response"] == "a"
    assert client.get("/echo", data="junk", content_type="text/plain").get_json() == {"success": False}


def test_echo_get_with_broken_json_is_400(client):
    reply = client.get("/echo", data="{", content_type="application/json")
    assert reply.status_code == 400 and reply.get_json()["problem"].startswith("The body is not valid JSON")


def test_predict_get_with_a_json_body_gives_the_model_estimate(client):
    from_body = client.get("/predict/residential", json=BROOKLYN).get_json()
    from_query = client.get("/predict/residential", query_string=BROOKLYN).get_json()
    assert from_body["model"] == "gbm" and from_body == from_query


def test_predict_query_wins_over_the_body_and_the_path_names_the_type(client):
    body = {**BROOKLYN, "lat": 40.85, "complaint_type": "heat/hot water"}
    mixed = client.get("/predict/residential", query_string={"lat": BROOKLYN["lat"]}, json=body).get_json()
    assert mixed == client.get("/predict/residential", query_string=BROOKLYN).get_json()
    assert mixed["complaint_type"] == "noise - residential"


@pytest.mark.parametrize(
    "body, field",
    [({"lat": 40.7, "date": "2019-06-08 00:00:09"}, "lon"), ({"lat": "north", "lon": -73.9, "date": "x"}, "lat")],
)
def test_predict_body_is_checked_like_the_query(client, body, field):
    reply = client.get("/predict/residential", json=body)
    assert reply.status_code == 400 and reply.get_json()["field"] == field


def test_predict_body_must_be_an_object(client):
    reply = client.get("/predict/residential", json=[1, 2])
    assert reply.status_code == 400 and "JSON object" in reply.get_json()["problem"]


# --- entry files and scripts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, path, answer",
    [("echo.py", "/?msg=hi", {"response": "hi", "success": True}), ("predict.py", "/health", {"model_loaded": True})],
)
def test_python_entry_file_starts_flasks_development_server(entry, path, answer):
    port = free_port()
    process = spawn([sys.executable, entry], {**os.environ, "PORT": str(port)})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base + path, process)
        got = requests.get(base + path, timeout=5).json()
        assert {name: got.get(name) for name in answer} == answer
        log = output(process)
        assert "Running on all addresses (0.0.0.0)" in log, log
    finally:
        stop(process)


def run_script(*args: str, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True, timeout=300
    )


def test_bench_model_runs_and_prints_its_figures():
    done = run_script("scripts/bench_model.py", "--repeat", "20", "--rows", "200")
    assert done.returncode == 0, done.stderr
    assert "single-row predict, compiled" in done.stdout and "200 rows, compiled" in done.stdout


def test_train_says_folder_not_found_and_never_writes_models_by_default(tmp_path):
    missing = run_script("scripts/train.py", "--data", str(tmp_path / "shared" / "nyc311"), "--out", str(tmp_path))
    assert missing.returncode == 2 and f"folder not found: {tmp_path / 'shared' / 'nyc311'}" in missing.stderr
    no_out = run_script("scripts/train.py", "--data", str(ROOT / "tests" / "fixtures" / "nyc311"))
    assert no_out.returncode == 2 and "--out" in no_out.stderr
    assert list(tmp_path.iterdir()) == []


def test_keys_script_says_where_keys_live_when_unset():
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "API_KEYS_FILE")}
    done = run_script("scripts/keys.py", "list", env=env)
    assert done.returncode == 2 and "REDIS_URL" in done.stderr and "API_KEYS_FILE" in done.stderr


def test_the_package_imports_from_any_folder(tmp_path):
    """make install puts eta311 into .venv (editable): a snippet runs from any folder, not just the repo root."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = run_script("-c", "from eta311.client import gzip_payload; print(gzip_payload([]))", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert gzip.decompress(base64.b64decode(done.stdout)) == b"[]"
