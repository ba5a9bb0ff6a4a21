"""The Procfile service's /metrics and logs: exact counts across two workers that restart, request ids in logs."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import live
import requests
from live import procfile_web
from prometheus_client.parser import text_string_to_metric_families

MEDIANS_ROUTE = "/predict/<path:complaint_type>"
# (method, path, body, route label, status): answers of every kind, errors included.
REQUESTS = [
    ("GET", "/predict/appliance", None, MEDIANS_ROUTE, 200),
    ("GET", "/predict/unicorn", None, MEDIANS_ROUTE, 400),
    ("GET", "/no/such/route", None, "unmatched", 404),
    ("DELETE", "/predict/appliance", None, "unmatched", 405),
    ("POST", "/predict", b"[" + b" " * 4096 + b"]", "/predict", 413),
    ("GET", "/health", None, "/health", 200),
]


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def request_counts(samples: dict) -> Counter:
    """http_requests_total by (route, method, status), scrapes themselves left out."""
    counts: Counter = Counter()
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if name == "http_requests_total" and labels["route"] != "/metrics":
            counts[(labels["route"], labels["method"], labels["status"])] += value
    return counts


def serving_pids(samples: dict) -> set[str]:
    return {dict(labels)["pid"] for (name, labels), value in samples.items() if name == "eta311_serving_info" and value}


def gunicorn_workers(process) -> list[int]:
    """The worker processes: gunicorn processes whose parent is a gunicorn process (the master).

    By name (comm), not by command line: the shell honcho starts has "gunicorn" in its command line too.
    """
    pids = live.descendants(process.pid)
    gunicorns = {p for p in pids if Path(f"/proc/{p}/comm").read_text().startswith("gunicorn")}
    return [p for p in gunicorns if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) in gunicorns]


def send(base: str, method: str, path: str, body: bytes | None) -> tuple[int, int]:
    """The status, and how many connections were reset before an answer (then the request is sent again).

    A gthread worker that reaches max_requests may already have accepted the next connection; it
    exits without reading it and the client sees a reset. Such a request never reached the app.
    """
    headers = {"Connection": "close", "Content-Type": "application/json"}
    for resets in range(5):
        try:
            return requests.request(method, base + path, data=body, headers=headers, timeout=10).status_code, resets
        except requests.ConnectionError:
            continue
    raise AssertionError(f"{method} {path}: five resets in a row")


MAX_REQUESTS_SENT = 1_000


def test_exact_counts_across_two_workers_recycled_and_killed():
    env = {
        # Each worker recycles after 9 requests, so several exit and are replaced during the run.
        "GUNICORN_CMD_ARGS": "--max-requests 9 --max-requests-jitter 0",
        "MAX_BODY_BYTES": "1024",
        "RELOAD_INTERVAL_SECONDS": "0",
    }
    with procfile_web(**env) as (base, process):
        folder = Path(f"/dev/shm/eta311-metrics-{base.rsplit(':', 1)[1]}")
        before = request_counts(scrape(base))
        sent: Counter = Counter()
        killed, resets = None, 0
        # At least 120 requests, and on until workers have recycled three times: how many recycles
        # fit in 120 quick requests depends on how fast the exiting workers drain (2-3 here).
        for i in range(MAX_REQUESTS_SENT):
            if i >= 120 and live.output(process).count("Autorestarting worker") >= 3:
                break
            method, path, body, route, status = REQUESTS[i % len(REQUESTS)]
            answered, reset = send(base, method, path, body)
            assert answered == status
            sent[(route, method, str(status))] += 1
            resets += reset
            if i == 60:  # a crash, not a recycle: SIGKILL, so the worker runs no exit code of its own
                killed = gunicorn_workers(process)[0]
                os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 20  # the master reaps the killed worker and folds its files
        while str(killed) in serving_pids(samples := scrape(base)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert str(killed) not in serving_pids(samples)

        after = request_counts(samples)
        assert after - before == sent and sum(sent.values()) >= 120, f"{resets} resets"
        predictions = sum(
            v for (n, labels), v in samples.items() if n == "eta311_predictions_total" and ("kind", "medians") in labels
        )
        assert predictions == sent[(MEDIANS_ROUTE, "GET", "200")]
        # Bounded: the archives, the master's own counters and each live worker's three files,
        # however many workers have come and gone.
        files = sorted(p.name for p in folder.glob("*.db"))
        assert {"counter_archive.db", "histogram_archive.db"} <= set(files)
        assert len(files) <= 2 + 1 + 3 * 3, files
        # Recycled by max_requests (several times; the lines may still be on their way through honcho).
        find_line(process, "Autorestarting worker")
        assert live.output(process).count("Autorestarting worker") >= 3
        assert "Traceback" not in live.output(process)
    assert not folder.exists(), "the master removes its metrics folder on exit"


def find_line(process, needle: str) -> str:
    deadline = time.monotonic() + 10  # the line may still be on its way through honcho
    while time.monotonic() < deadline:
        found = [line for line in live.output(process).splitlines() if needle in line]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no log line with {needle}: {live.output(process)[-3000:]}")


def test_the_request_id_is_in_the_answer_and_in_the_log_line():
    with procfile_web() as (base, process):
        given = f"test-{uuid.uuid4()}"
        reply = requests.get(f"{base}/predict/appliance", headers={"X-Request-ID": given}, timeout=10)
        assert reply.status_code == 200 and reply.headers["X-Request-ID"] == given
        line = find_line(process, f"request_id={given}")
        assert "logger=eta311.request msg=request method=GET route=/predict/<path:complaint_type> status=200" in line
        assert f"medians_version={reply.json()['model_version']}" in line

        missing = requests.get(f"{base}/nowhere", headers={"X-Request-ID": "not safe"}, timeout=10)
        generated = missing.headers["X-Request-ID"]
        assert missing.status_code == 404 and generated != "not safe"
        assert "route=unmatched status=404" in find_line(process, f"request_id={generated}")
        # Gunicorn's own lines are logfmt too.
        assert find_line(process, 'logger=gunicorn.error msg="Booting worker with pid')
