"""Collect, trigger and publish while the Procfile's service is under load: new versions, no failures."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack

import boto3
import pytest
import requests
from fake_socrata import FakeSocrata
from live import ROOT, S3_CREDENTIALS, moto_s3, output, procfile_web

from eta311.data.publish import publish_trained_model
from eta311.model.artifact import MODEL_CARD
from eta311.storage import open_store

QUERIES = [
    ("noise - residential", None),
    ("noise - residential", {"lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}),
    ("heat/hot water", None),
    ("illegal parking", {"lat": 40.65, "lon": -73.95, "date": "2019-06-09 13:30:00"}),
]


class Traffic:
    """Threads sending requests until stopped; every answer is kept with the version that gave it."""

    def __init__(self, base: str, threads: int = 4):
        self.base, self.answers, self.failures = base, [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, offset: int) -> None:
        session, i = requests.Session(), offset
        while not self._stop.is_set():
            complaint, params = QUERIES[i % len(QUERIES)]
            i += 1
            try:
                reply = session.get(f"{self.base}/predict/{complaint}", params=params, timeout=10)
                body = reply.json()
                if reply.status_code != 200 or body["status"] != "success":
                    self.failures.append((reply.status_code, body))
                else:
                    self.answers.append((time.monotonic(), body["model"], body["model_version"]))
            except Exception as exc:  # noqa: BLE001 - every kind of failure counts
                self.failures.append(repr(exc))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def first_answer_with(self, version: str, since: float, timeout: float = 15) -> float:
        """Seconds from since until an answer named version."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [t for t, _, v in list(self.answers) if v == version and t >= since]
            if seen:
                return min(seen) - since
            time.sleep(0.05)
        raise AssertionError(f"no answer named {version} within {timeout} s")


def run_script(name: str, *args: str, env: dict) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_versions_change_under_load_without_a_failed_request(kind, tmp_path, tiny_run, monkeypatch):
    records = [
        r
        for p in sorted((ROOT / "tests" / "fixtures" / "nyc311").glob("*.json.gz"))
        for r in json.loads(gzip.decompress(p.read_bytes()))
    ]
    with ExitStack() as stack:
        socrata = stack.enter_context(FakeSocrata(records))
        env = {"SOCRATA_URL": socrata.url, "RELOAD_INTERVAL_SECONDS": "1", "STORE_URI": str(tmp_path / "data")}
        if kind == "s3":
            endpoint = stack.enter_context(moto_s3())
            env.update(S3_CREDENTIALS, AWS_ENDPOINT_URL_S3=endpoint, STORE_URI="s3://eta-pipeline/nyc311")
            for key, value in S3_CREDENTIALS.items():
                monkeypatch.setenv(key, value)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="eta-pipeline")
        base, web = stack.enter_context(procfile_web(**env))
        bundled = requests.get(f"{base}/health", timeout=5).json()
        traffic = stack.enter_context(Traffic(base))
        time.sleep(0.5)

        # 1. The daily job: collect four days, then the trigger recomputes and publishes the medians.
        for last_day in ("2019-05-05", "2019-05-12"):
            run_script("collect.py", "--date", last_day, "--days", "2", "--page-size", "400", env=env)
        published_at = time.monotonic()
        out = run_script("trigger.py", env=env)
        trigger_seconds = time.monotonic() - published_at
        medians_version = out.split()[1].rstrip(":")
        assert "published" in out and medians_version != bundled["medians_version"]
        medians_delay = traffic.first_answer_with(medians_version, published_at)

        # 2. A new model version.
        store = open_store(env["STORE_URI"] + "/published", env.get("AWS_ENDPOINT_URL_S3"))
        published_at = time.monotonic()
        card = publish_trained_model(store, tiny_run.model, tiny_run.card)
        model_delay = traffic.first_answer_with(card["version"], published_at)
        time.sleep(2.5)  # one worker answering with it is not all of them: let every poller see the good card

        # 3. A tampered card: refused by every worker, the last good model keeps answering.
        bad = {**card, "version": "gbm-tampered", "serving_artifact": {**card["serving_artifact"], "sha256": "0" * 64}}
        store.put(MODEL_CARD, json.dumps(bad).encode())
        time.sleep(3)
        health = requests.get(f"{base}/health", timeout=5).json()
        time.sleep(0.5)

    versions = {v for _, _, v in traffic.answers}
    print(
        f"\n[{kind}] {len(traffic.answers)} answers, {len(traffic.failures)} failed; trigger run + reload"
        f" {medians_delay:.2f} s (trigger alone {trigger_seconds:.2f} s), model reload {model_delay:.2f} s; versions seen {sorted(versions)}"
    )
    assert traffic.failures == []
    assert versions <= {bundled["medians_version"], bundled["model_version"], medians_version, card["version"]}
    assert "gbm-tampered" not in versions
    assert health["status"] == "degraded" and "does not match its card" in health["last_reload_error"], "\n".join(
        line for line in output(web).splitlines() if "GET /predict" not in line
    )[-4000:]
    assert health["model_version"] == card["version"]
    last_model = [v for _, m, v in traffic.answers if m == "gbm"][-20:]
    assert set(last_model) == {card["version"]}
