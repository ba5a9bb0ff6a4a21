"""The Procfile's web process under honcho, as `heroku local` runs it: real HTTP, then SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import live
import pytest
import requests
from live import procfile_web
from test_api import real_png


@pytest.fixture
def web():
    with procfile_web() as running:
        yield running


def test_procfile_web_serves_and_stops_cleanly(web):
    base, process = web
    assert requests.get(f"{base}/echo?msg=Hello", timeout=5).json() == {"response": "Hello", "success": True}
    png = real_png()
    echoed = requests.post(
        f"{base}/echo", json={"msg": base64.b64encode(png).decode(), "encoding": "base64"}, timeout=5
    )
    assert base64.b64decode(echoed.json()["response"]) == png

    median = requests.get(f"{base}/predict/appliance", timeout=5).json()
    assert median["status"] == "success" and median["estimated_time"] > 0
    estimate = requests.get(
        f"{base}/predict/residential",
        params={"lat": 40.636626, "lon": -73.951694, "date": "2019-06-08 00:00:09"},
        timeout=5,
    ).json()
    assert estimate["model"] == "gbm" and estimate["model_version"].startswith("gbm-")
    unknown = requests.get(f"{base}/predict/unicorn", timeout=5)
    assert unknown.status_code == 400 and unknown.json()["problem"] == "Complaint type is not in database"
    assert (
        requests.post(f"{base}/predict", data="{", headers={"Content-Type": "application/json"}, timeout=5).status_code
        == 400
    )

    rows = [
        {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": f"2019-06-08 {h:02d}:00:00"}
        for h in range(24)
    ]
    batch = {"records": rows * 400}

    def post_batch(_):
        reply = requests.post(f"{base}/predict", json=batch, timeout=30)
        return reply.status_code, reply.json()["failed"]

    with ThreadPoolExecutor(8) as pool:
        in_flight = [pool.submit(post_batch, i) for i in range(8)]
        time.sleep(0.3)  # requests are on the wire when the deploy's SIGTERM arrives
        os.killpg(process.pid, signal.SIGTERM)
        results = [f.result() for f in in_flight]
    assert results == [(200, 0)] * 8
    started = time.monotonic()
    process.wait(timeout=30)  # honcho itself reports 128+15 for the SIGTERM it was sent
    output = live.output(process)
    assert time.monotonic() - started < 25, "must exit well before Heroku's SIGKILL at 30 s"
    # Heroku signals every process of the dyno; honcho's shell wrapper dies of it (rc=-15) while
    # gunicorn finishes its requests and shuts down on its own.
    assert "Handling signal: term" in output and "Shutting down: Master" in output, output
    assert "Traceback" not in output
