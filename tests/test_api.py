"""The HTTP API through Flask's test client: echo, medians, model estimates, batches, errors."""

import base64
import gzip
import json
import struct
import zlib

import pytest

from eta311.client import gzip_payload


def real_png(width=16, height=16) -> bytes:
    """A valid RGB PNG, gradient filled, built with zlib alone."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 15 % 256, y * 15 % 256, 200)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# --- echo -----------------------------------------------------------------------------------------


def test_echo_get(client):
    assert client.get("/echo?msg=Hello").get_json() == {"response": "Hello", "success": True}


def test_echo_repeated_param_is_a_list_single_is_scalar(client):
    assert client.get("/echo?msg=a&msg=b").get_json()["response"] == ["a", "b"]
    assert client.get("/echo/?msg=a").get_json()["response"] == "a"


def test_echo_post_json(client):
    assert client.post("/echo", json={"msg": {"nested": [1, 2]}}).get_json() == {
        "response": {"nested": [1, 2]},
        "success": True,
    }


def test_echo_without_msg(client):
    assert client.get("/echo").get_json() == {"success": False}
    assert client.post("/echo", json={"other": 1}).get_json() == {"success": False}


def test_echo_base64_png_round_trip(client):
    png = real_png()
    sent = base64.b64encode(png).decode()
    reply = client.post("/echo", json={"msg": sent, "encoding": "base64"}).get_json()
    assert base64.b64decode(reply["response"]) == png and png.startswith(b"\x89PNG")


def test_echo_bad_base64_is_400(client):
    reply = client.post("/echo", json={"msg": "not*base64!", "encoding": "base64"})
    assert reply.status_code == 400 and reply.get_json()["field"] == "msg"


@pytest.mark.parametrize(
    "body, content_type, status, problem",
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"msg": NaN}', "application/json", 400, "msg holds NaN: JSON numbers must be finite"),
        (b"msg=hi", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        (b'"x"' + b" " * (9 * 1024 * 1024), "application/json", 413, "size limit"),
    ],
)
def test_echo_bad_bodies(client, body, content_type, status, problem):
    reply = client.post("/echo", data=body, content_type=content_type)
    assert reply.status_code == status
    assert problem in reply.get_json()["problem"] and reply.get_json()["status"] == "failure"


def test_echo_app_serves_echo_at_root():
    import echo

    client = echo.app.test_client()
    assert client.get("/?msg=Hello").get_json() == {"response": "Hello", "success": True}


# --- medians --------------------------------------------------------------------------------------


def test_median_route(client, tiny_run):
    reply = client.get("/predict/Noise - Residential").get_json()
    assert reply["status"] == "success" and reply["complaint_type"] == "noise - residential"
    assert reply["estimated_time"] == tiny_run.medians["noise - residential"]
    assert reply["model"] == "medians" and reply["model_version"].startswith("medians-")


def test_short_noise_names(client, tiny_run):
    reply = client.get("/predict/residential").get_json()
    assert reply["complaint_type"] == "noise - residential"
    slash = client.get("/predict/noise - street/sidewalk").get_json()
    assert slash["estimated_time"] == tiny_run.medians["noise - street/sidewalk"]


def test_unknown_type_is_400(client):
    reply = client.get("/predict/unicorn sighting")
    assert reply.status_code == 400
    assert reply.get_json() == {
        "status": "failure",
        "success": False,
        "problem": "Complaint type is not in database",
        "complaint_type": "unicorn sighting",
    }


# --- model ----------------------------------------------------------------------------------------


def test_model_route(client, published):
    _, card = published
    reply = client.get("/predict/residential?lat=40.636626&lon=-73.951694&date=2019-06-08 00:00:09")
    body = reply.get_json()
    assert reply.status_code == 200 and body["model"] == "gbm" and body["model_version"] == card["version"]
    assert 0 <= body["interval"]["low"] <= body["estimated_time"] <= body["interval"]["high"]
    assert body["fallbacks"] == []


def test_model_route_fallbacks(client):
    body = client.get("/predict/unicorn sighting?date=2019-06-08 00:00:09").get_json()
    assert body["status"] == "success" and body["fallbacks"] == ["unknown_complaint_type", "missing_coordinates"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("lat=40.7&date=2019-06-08", "lon"),
        ("lat=40.7&lon=-73.9", "date"),
        ("lat=nan&lon=-73.9&date=2019-06-08", "lat"),
        ("lat=51.5&lon=-0.12&date=2019-06-08", "lat"),
        ("lat=40.7&lon=-73.9&date=June 8th", "date"),
        ("lat=40.7&lon=-73.9&date=2019-06-08&colour=red", "colour"),
        ("lat=40.7&lat=40.8&lon=-73.9&date=2019-06-08", "lat"),
    ],
)
def test_bad_query_params_name_the_field(client, query, field):
    reply = client.get(f"/predict/rodent?{query}")
    assert reply.status_code == 400 and reply.get_json()["field"] == field


def test_post_one_record(client):
    body = client.post(
        "/predict", json={"complaint_type": "rodent", "lat": 40.7, "lon": -73.9, "date": "2019-06-08T00:00:09.000"}
    ).get_json()
    assert body["status"] == "success" and body["model"] == "gbm"


def test_batch_keeps_order_and_reports_bad_rows(client):
    rows = [
        {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"},
        {"complaint_type": "rodent", "lat": "north", "lon": -73.9, "date": "2019-06-08 00:00:09"},
        {"complaint_type": "heat/hot water"},
        "not a record",
        {"complaint_type": "residential", "lat": 40.6, "lon": -73.95, "date": "2019-06-09 13:00:00"},
    ]
    body = client.post("/predict", json={"records": rows}).get_json()
    answers = body["predictions"]
    assert body["count"] == 5 and body["failed"] == 2
    assert [a["status"] for a in answers] == ["success", "failure", "success", "failure", "success"]
    assert answers[1]["index"] == 1 and answers[1]["field"] == "lat" and answers[3]["index"] == 3
    assert answers[0]["model"] == "gbm" and answers[2]["model"] == "medians"
    single = client.post("/predict", json=rows[4]).get_json()
    assert single["estimated_time"] == answers[4]["estimated_time"]


def test_gzip_base64_payload_equals_plain_batch(client):
    rows = [
        {"complaint_type": "residential", "lat": 40.7 + i / 1000, "lon": -73.9, "date": "2019-06-08 00:00:09"}
        for i in range(50)
    ]
    plain = client.post("/predict", json={"records": rows}).get_json()
    packed = client.post("/predict", json={"payload": gzip_payload({"records": rows})}).get_json()
    unzipped = client.post(
        "/predict", json={"payload": base64.b64encode(json.dumps(rows).encode()).decode()}
    ).get_json()
    assert packed["predictions"] == plain["predictions"] == unzipped["predictions"]


def test_batch_limits(app, client):
    limit = app.config["SETTINGS"].max_batch_rows
    too_many = client.post("/predict", json={"records": [{"complaint_type": "rodent"}] * (limit + 1)})
    assert too_many.status_code == 413
    bomb = base64.b64encode(gzip.compress(b"[" + b" " * (40 * 1024 * 1024) + b"]")).decode()
    assert client.post("/predict", json={"payload": bomb}).status_code == 413
    assert client.post("/predict", json={"payload": "@@@"}).get_json()["field"] == "payload"


def test_health_and_model_card(client, published):
    _, card = published
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["model_loaded"] and health["model_version"] == card["version"]
    served = client.get("/model").get_json()
    assert served["artifact"]["sha256"] == card["artifact"]["sha256"] and "metrics" in served


def test_routing_errors_are_json(client):
    assert client.get("/nowhere").get_json()["status"] == "failure"
    wrong = client.delete("/predict")
    assert wrong.status_code == 405 and wrong.get_json()["status"] == "failure"
