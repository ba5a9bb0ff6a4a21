"""Request ids, the one logfmt line per request and the metrics, in-process through the app factory."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re

import pytest
from prometheus_client import REGISTRY

from eta311.logfmt import LogfmtFormatter, logfmt_value
from eta311.model.artifact import MEDIANS
from eta311.plans import Plan
from eta311.settings import Settings
from eta311.web import metrics
from eta311.web.app import create_app
from eta311.web.gate.keys import FileKeys, new_key
from eta311.web.observe import request_id

MEDIANS_ROUTE = "/predict/<path:complaint_type>"
GENERATED = re.compile(r"^[0-9a-f]{16}-[0-9a-f]+$")  # a process's random prefix, then its counter


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"dyno": metrics.DYNO, **labels}) or 0.0


@pytest.fixture
def lines():
    """Every log line the service writes while the test runs, formatted as production formats them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("eta311").level
    logging.getLogger("eta311").setLevel(logging.INFO)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    logging.getLogger("eta311").setLevel(level)


def keyed_app(published, tmp_path, plan: Plan, **overrides):
    store, _ = published
    keys = FileKeys(tmp_path / "keys.json")
    key, record = new_key("test client", plan)
    keys.put(record)
    settings = Settings(
        model_uri=str(store.root),
        fallback_uri=None,
        reload_interval_seconds=0,
        api_keys_file=str(tmp_path / "keys.json"),
        require_api_keys=True,
        rate_limit_storage_uri=f"sqlite:///{tmp_path}/limits.sqlite",
    )
    return create_app(dataclasses.replace(settings, **overrides)), key, record


@pytest.mark.parametrize(
    "given, kept",
    [
        ("b7f1c7a2-1b0e-4bb4-9d4b-1f3c2b8f9a10", True),
        ("client.retry:7/abc+=@_-", True),
        ("x" * 200, True),
        ("x" * 201, False),
        ("has space", False),
        ('quote"d', False),
        ("new\\line", False),
        ("", False),
    ],
)
def test_a_safe_request_id_is_kept_anything_else_replaced(given, kept):
    answered = request_id(given or None)
    assert (answered == given) is kept
    if not kept:
        assert GENERATED.match(answered)
        assert request_id(None) != request_id(None)  # never the same twice


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("GET", "/predict/appliance", None, 200),
        ("GET", "/predict/unicorn", None, 400),
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/predict/appliance", None, 405),
        ("POST", "/predict", b"x" * 2048, 413),
        ("POST", "/predict", b"{", 400),
    ],
)
def test_every_answer_carries_its_request_id_and_one_log_line(published, tmp_path, lines, method, path, body, status):
    store, _ = published
    app = create_app(
        Settings(model_uri=str(store.root), fallback_uri=None, reload_interval_seconds=0, max_body_bytes=1024)
    )
    reply = app.test_client().open(
        path, method=method, data=body, content_type="application/json", headers={"X-Request-ID": "req-0123456789"}
    )
    assert reply.status_code == status
    assert reply.headers["X-Request-ID"] == "req-0123456789"
    request_lines = [line for line in lines() if "logger=eta311.request" in line]
    assert len(request_lines) == 1, lines()
    line = request_lines[0]
    assert f"method={method} " in line and f"status={status} " in line and "request_id=req-0123456789" in line
    assert re.search(r" duration_ms=\d+\.\d\d( |$)", line)
    route = "unmatched" if status in (404, 405) else ("/predict" if method == "POST" else MEDIANS_ROUTE)
    assert f"route={logfmt_value(route)}" in line
    assert "/no/such/route" not in line and "appliance" not in line  # never the raw path


def test_the_log_line_names_the_key_id_and_the_version_but_never_the_key(published, tmp_path, lines):
    app, key, record = keyed_app(published, tmp_path, Plan("test", rate=100, burst=100, quota=1000))
    reply = app.test_client().get("/predict/appliance", headers={"x-api-key": key})
    assert reply.status_code == 200
    line = next(line for line in lines() if "logger=eta311.request" in line)
    assert f"key_id={record.key_id}" in line
    assert f"medians_version={reply.json['model_version']}" in line
    assert key not in "\n".join(lines())
    request_id_header = reply.headers["X-Request-ID"]
    assert GENERATED.match(request_id_header) and f"request_id={request_id_header}" in line


def test_a_refusal_by_the_gate_is_logged_counted_and_has_an_id(published, tmp_path, lines):
    app, key, _ = keyed_app(published, tmp_path, Plan("tiny", rate=1, burst=2, quota=1000))
    client = app.test_client()
    before = sample("eta311_rate_limit_refusals_total", plan="tiny", limit="rate")
    before_429 = sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="429")
    statuses = [client.get("/predict/appliance", headers={"x-api-key": key}).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert sample("eta311_rate_limit_refusals_total", plan="tiny", limit="rate") == before + 2
    assert sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="429") == before_429 + 2
    refused = client.get("/predict/appliance")
    assert refused.status_code == 401 and GENERATED.match(refused.headers["X-Request-ID"])
    assert sum("status=429" in line for line in lines()) == 2 and sum("status=401" in line for line in lines()) == 1


def test_requests_and_predictions_are_counted_by_route_template_kind_and_version(app):
    client = app.test_client()
    snapshot = app.extensions["model_store"].current
    medians = {"kind": "medians", "source": "single", "version": snapshot.medians_version}
    model_rows = {"kind": "model", "source": "batch", "version": snapshot.model_version}
    before = {
        "ok": sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="200"),
        "bad": sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="400"),
        "odd": sample("http_requests_total", route="unmatched", method="other", status="405"),
        "medians": sample("eta311_predictions_total", **medians),
        "rows": sample("eta311_predictions_total", **model_rows),
        "slow": sample("http_request_duration_seconds_count", route=MEDIANS_ROUTE, method="GET", status_class="2xx"),
    }
    for name in ("appliance", "residential", "appliance"):
        assert client.get(f"/predict/{name}").status_code == 200
    assert client.get("/predict/unicorn").status_code == 400
    assert client.open("/predict/appliance", method="BREW").status_code == 405
    row = {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 10:00:00"}
    batch = client.post("/predict", json={"records": [row, row, {"complaint_type": "unicorn"}, row]})
    assert batch.json["count"] == 4 and batch.json["failed"] == 1

    assert sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="200") == before["ok"] + 3
    assert sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="400") == before["bad"] + 1
    assert sample("http_requests_total", route="unmatched", method="other", status="405") == before["odd"] + 1
    assert sample("eta311_predictions_total", **medians) == before["medians"] + 3
    assert sample("eta311_predictions_total", **model_rows) == before["rows"] + 3
    count = sample("http_request_duration_seconds_count", route=MEDIANS_ROUTE, method="GET", status_class="2xx")
    assert count == before["slow"] + 3
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/predict/<path:complaint_type>"' in text and "appliance" not in text
    assert f'eta311_serving_info{{dyno="{metrics.DYNO}",medians_version="{snapshot.medians_version}"' in text


def test_a_refused_publish_and_a_reload_are_counted(published):
    store, _ = published
    app = create_app(Settings(model_uri=str(store.root), fallback_uri=None, reload_interval_seconds=0))
    models = app.extensions["model_store"]
    refused = sample("eta311_publishes_refused_total", artifact="medians")
    reloads = sample("eta311_reloads_total", artifact="medians")
    store.put(MEDIANS, b'{"appliance": -1}')
    assert not models.refresh()
    assert sample("eta311_publishes_refused_total", artifact="medians") == refused + 1
    store.put(MEDIANS, json.dumps({"appliance": 3.5}).encode())
    assert models.refresh()
    assert sample("eta311_reloads_total", artifact="medians") == reloads + 1
    version = models.current.medians_version
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert re.search(rf'eta311_serving_info{{[^}}]*medians_version="{version}"[^}}]*}} 1\.0', text)


def test_metrics_need_the_token_when_one_is_set_and_never_an_api_key(published, tmp_path):
    app, _, _ = keyed_app(published, tmp_path, Plan("tiny", rate=1, burst=1, quota=1), metrics_token="s3cret-token")
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/predict/appliance").status_code == 401  # the API itself still needs a key
    for _ in range(3):  # a plan of one request a day does not apply: scrapes are never rate limited
        reply = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert reply.status_code == 200 and reply.mimetype == "text/plain"
        assert "# TYPE http_requests_total counter" in reply.get_data(as_text=True)


def test_redis_errors_are_counted(published, tmp_path):
    from live import free_port

    store, _ = published
    before = sample("eta311_redis_errors_total", operation="keys")
    settings = Settings(
        model_uri=str(store.root),
        fallback_uri=None,
        reload_interval_seconds=0,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        require_api_keys=True,
    )
    app = create_app(settings)
    reply = app.test_client().get("/predict/appliance", headers={"x-api-key": "eta_0123abcd_" + "a" * 24})
    assert reply.status_code == 503
    assert sample("eta311_redis_errors_total", operation="keys") == before + 2  # the start-up load, then the lookup


def test_the_readme_shows_every_metric_and_only_those():
    from test_docs import README

    ours = {f.name for f in REGISTRY.collect() if f.name.startswith(("http_", "eta311_"))}
    assert len(ours) == 8
    section = README.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    shown = set(re.findall(r"^(\w+?)(?:_total|_bucket|_count|_sum)?\{", section, re.M))
    assert shown == ours, shown ^ ours


def test_with_metrics_off_requests_go_unobserved(published, lines):
    store, _ = published
    settings = Settings(model_uri=str(store.root), fallback_uri=None, reload_interval_seconds=0, observe_requests=False)
    client = create_app(settings).test_client()
    before = sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="200")
    reply = client.get("/predict/appliance", headers={"X-Request-ID": "req-0123456789"})
    assert reply.status_code == 200 and "X-Request-ID" not in reply.headers
    assert sample("http_requests_total", route=MEDIANS_ROUTE, method="GET", status="200") == before
    assert not [line for line in lines() if "logger=eta311.request" in line]
    assert client.get("/metrics").status_code == 200  # still there, for what the workers load and refuse


def test_a_forked_worker_makes_ids_of_its_own():
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as a Gunicorn worker forked from the master
        os.write(write, request_id(None).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read), os.close(write)
    assert child.split("-")[0] != request_id(None).split("-")[0]


def test_a_forked_worker_knows_its_own_pid_without_asking_the_kernel():
    # prometheus-client names each process's value files by this pid: a stale one would mix workers' counts.
    import os

    from eta311.web.metrics import process_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, f"{process_id()} {os.getpid()}".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    known, actual = os.read(read, 200).decode().split()
    os.close(read), os.close(write)
    assert known == actual == str(pid) and process_id() == os.getpid() != pid
