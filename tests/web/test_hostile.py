"""Hostile inputs (issue #12): each is a clear 4xx naming its field, a bad row fails alone, and nothing big is built."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tracemalloc

import pytest

from eta311.web.payloads import MAX_JSON_DEPTH, check_json_shape, max_json_values

DEEP = 1_000
GOOD_ROW = {"complaint_type": "residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def packed(text: str | bytes) -> str:
    blob = text.encode() if isinstance(text, str) else text
    return base64.b64encode(gzip.compress(blob)).decode()


def post(client, path: str, text: str):
    return client.post(path, data=text, content_type="application/json")


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/predict", f'{{"complaint_type": "rodent", "lat": {nested(DEEP)}}}', "lat"),
        ("/predict", f'{{"records": [{nested(DEEP)}]}}', "records"),
        ("/echo", f'{{"msg": {nested(DEEP)}}}', "msg"),
        ("/predict", json.dumps({"payload": packed(f'{{"records": [{nested(DEEP)}]}}')}), "payload"),
        ("/predict", nested(DEEP), "[0]"),
    ],
)
def test_deep_nesting_is_a_400_naming_the_field(client, path, body, field):
    reply = post(client, path, body)
    assert reply.status_code == 400, reply.get_json()
    assert reply.get_json()["field"] == field
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in reply.get_json()["problem"]


def test_nesting_within_the_limit_in_a_row_fails_only_that_row(client):
    rows = [GOOD_ROW, {**GOOD_ROW, "lat": [[[40.7]]]}, GOOD_ROW]
    reply = client.post("/predict", json={"records": rows}).get_json()
    assert [p["status"] for p in reply["predictions"]] == ["success", "failure", "success"]
    assert reply["predictions"][1]["field"] == "lat" and reply["failed"] == 1


HUGE = "4" + "0" * 3_999  # a 4,000-digit integer: float() overflows


def test_a_huge_number_is_a_400_naming_the_field(client):
    reply = post(
        client, "/predict", f'{{"complaint_type": "rodent", "lat": {HUGE}, "lon": -73.9, "date": "2019-06-08"}}'
    )
    assert reply.status_code == 400 and reply.get_json()["field"] == "lat"
    reply = client.get(f"/predict/rodent?lat={HUGE}&lon=-73.9&date=2019-06-08")
    assert reply.status_code == 400 and reply.get_json()["field"] == "lat"
    reply = post(client, "/echo", f'{{"msg": [1, {HUGE}]}}')
    assert reply.status_code == 400 and reply.get_json()["field"] == "msg[1]"


def test_a_huge_number_in_one_row_fails_only_that_row(client):
    good = json.dumps(GOOD_ROW)
    body = f'{{"records": [{good}, {{"complaint_type": "rodent", "lat": {HUGE}, "lon": -73.9, "date": "2019-06-08"}}, {good}]}}'
    reply = post(client, "/predict", body)
    assert reply.status_code == 200
    answers = reply.get_json()["predictions"]
    assert [a["status"] for a in answers] == ["success", "failure", "success"]
    assert answers[1]["field"] == "lat" and answers[1]["index"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ("lat=4_0.7&lon=-73.9&date=2019-06-08", "lat"),
        ("lat=40.7&lon=-7_3.9&date=2019-06-08", "lon"),
        ("lat=\u0664\u0660.\u0667&lon=-73.9&date=2019-06-08", "lat"),  # Arabic-Indic digits
        ("lat=40.7&lon=-73.9&date=\u0662\u0660\u0661\u0669-06-08", "date"),
        ("lat= 40.7&lon=-73.9&date=2019-06-08", "lat"),
        ("lat=0x28&lon=-73.9&date=2019-06-08", "lat"),
        ("lat=40.7&lon=-73.9&date=0000-06-08 00:00:09", "date"),
        ("lat=40.7&lon=-73.9&date=9999-06-08 00:00:09", "date"),
        ("lat=40.7&lon=-73.9&date=1899-06-08", "date"),
    ],
)
def test_numbers_and_dates_are_strict(client, query, field):
    reply = client.get(f"/predict/rodent?{query}")
    assert reply.status_code == 400 and reply.get_json()["field"] == field, reply.get_json()


def test_plain_decimals_and_sane_years_still_pass(client):
    for query in ("lat=40.7&lon=-73.9&date=2019-06-08", "lat=%2B40.70&lon=-73.90&date=2030-01-01 12:00"):
        assert client.get(f"/predict/residential?{query}").status_code == 200, query


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/echo", '{"msg": NaN}', "msg"),
        ("/echo", '{"msg": {"a": [1, -Infinity]}}', "msg.a[1]"),
        ("/echo", '{"msg": 1e999}', "msg"),
        ("/predict", '{"complaint_type": "rodent", "lat": NaN, "lon": -73.9, "date": "2019-06-08"}', "lat"),
        ("/predict", '{"records": NaN}', "records"),
    ],
)
def test_non_finite_numbers_are_400s_naming_the_field(client, path, body, field):
    reply = post(client, path, body)
    assert reply.status_code == 400 and reply.get_json()["field"] == field, reply.get_json()


def test_nan_in_one_row_fails_only_that_row(client):
    good = json.dumps(GOOD_ROW)
    body = f'{{"records": [{good}, {{"complaint_type": "rodent", "lat": NaN, "lon": -73.9, "date": "2019-06-08"}}]}}'
    answers = post(client, "/predict", body).get_json()["predictions"]
    assert [a["status"] for a in answers] == ["success", "failure"] and answers[1]["field"] == "lat"


@pytest.mark.parametrize("text", ["aGV*sbG8-", "aGVs bG8-!", "aGV+bG8-", "aGVsbG8_\u00e9"])
def test_url_safe_base64_is_as_strict_as_the_standard_alphabet(client, text):
    reply = client.post("/echo", json={"msg": text, "encoding": "base64"})
    assert reply.status_code == 400 and reply.get_json()["field"] == "msg"


def test_url_safe_base64_still_decodes(client):
    text = base64.urlsafe_b64encode(b"\xfb\xff\xfe hello").decode()
    assert "-" in text or "_" in text
    assert client.post("/echo", json={"msg": text, "encoding": "base64"}).status_code == 200


def test_a_chunked_body_over_the_limit_is_a_413_not_cut(app, client):
    limit = app.config["SETTINGS"].max_body_bytes
    body = b'{"msg": "hi"}' + b" " * limit  # the first bytes alone are valid JSON
    reply = client.post(
        "/echo",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
    )
    assert reply.status_code == 413, reply.get_json()
    small = client.post(
        "/echo",
        input_stream=io.BytesIO(b'{"msg": "hi"}'),
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
    )
    assert small.get_json() == {"response": "hi", "success": True}


def test_too_many_values_are_refused_before_they_are_built(app, client):
    """The issue's 43 KB request: 32 MiB of {"records":[{},{},...]} gzipped; it once cost a worker ~0.8 GB."""
    rows = app.config["SETTINGS"].max_batch_rows
    decoded = app.config["SETTINGS"].max_decoded_bytes
    count = (decoded - 20) // 3
    bomb = packed(b'{"records":[' + b"{}," * (count - 1) + b"{}]}")
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        reply = client.post("/predict", json={"payload": bomb})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 413 and reply.get_json()["field"] == "payload"
    assert f"more than {max_json_values(rows)} values" in reply.get_json()["problem"]
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB traced"


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/echo", b'{"msg": [' + b"{}," * 2_700_000 + b"{}]}", "msg"),
        ("/predict", b'{"records": [' + b'{"complaint_type":"x"},' * 360_000 + b"{}]}", "records"),
    ],
)
def test_a_plain_body_of_many_values_is_refused_without_building_it(client, path, body, field):
    tracemalloc.start()
    try:
        reply = client.post(path, data=body, content_type="application/json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 413 and reply.get_json()["field"] == field
    assert peak < 64 * 1024 * 1024, f"{peak / 1e6:.0f} MB traced"


def test_the_shape_check_ignores_brackets_and_commas_inside_strings():
    text = json.dumps({"msg": "[" * 500 + "," * 500_000}).encode()
    check_json_shape(text, max_values=100)  # one member: no error
    with pytest.raises(Exception, match="nested deeper"):
        check_json_shape(json.dumps({"msg": "x", "deep": [[[[[1]]]]]}).encode(), max_values=100, max_depth=4)


def test_an_unclosed_string_is_scanned_once_to_the_end_not_once_per_quote():
    from eta311.web.payloads import _JSON_TOKEN

    body = b'"' + b'\\"' * 2_000 + b"[" * 40
    # One token running to the end: the old pattern failed there and retried from each of the
    # 2,000 later quotes, scanning the rest each time (a 64 KB body took seconds, 8 MiB a day).
    assert [m.span() for m in _JSON_TOKEN.finditer(body)] == [(0, len(body))]


@pytest.mark.parametrize("path", ["/predict", "/echo"])
def test_a_body_of_escaped_quotes_that_never_closes_is_refused(client, path):
    response = post(client, path, '"' + '\\"' * 40_000 + "[" * 40)
    assert response.status_code == 400 and response.is_json


def test_a_lone_surrogate_is_echoed_back_not_a_500(client):
    one = post(client, "/predict", '{"complaint_type": "\\ud800", "date": "2019-06-08"}')
    assert one.status_code == 200 and one.get_json()["complaint_type"] == "\ud800"
    rows = [GOOD_ROW, {"complaint_type": "\ud800", "date": "2019-06-08"}]
    batch = post(client, "/predict", json.dumps({"records": rows}))
    assert batch.status_code == 200
    answers = batch.get_json()["predictions"]
    assert [a["status"] for a in answers] == ["success", "success"] and answers[1]["complaint_type"] == "\ud800"


@pytest.mark.parametrize(
    "blob, problem",
    [
        (gzip.compress(json.dumps({"records": [GOOD_ROW]}).encode())[:-6], "cut short"),
        (gzip.compress(json.dumps({"records": [GOOD_ROW]}).encode()) * 2, "after its gzip stream"),
        (gzip.compress(json.dumps({"records": [GOOD_ROW]}).encode()) + b"junk", "after its gzip stream"),
    ],
)
def test_a_damaged_or_doubled_gzip_payload_is_refused_not_half_read(client, blob, problem):
    response = post(client, "/predict", json.dumps({"payload": base64.b64encode(blob).decode()}))
    assert response.status_code == 400 and problem in response.get_json()["problem"]
    assert response.get_json()["field"] == "payload"


def test_a_whole_gzip_payload_still_reads(client):
    blob = gzip.compress(json.dumps({"records": [GOOD_ROW, GOOD_ROW]}).encode())
    response = post(client, "/predict", json.dumps({"payload": base64.b64encode(blob).decode()}))
    assert response.status_code == 200 and response.get_json()["count"] == 2


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP "])
def test_a_content_encoding_the_service_does_not_read_is_a_415(client, encoding):
    body = json.dumps({"records": [GOOD_ROW]}).encode()
    for blob in (body, gzip.compress(body)):  # plain with a false header, or really compressed
        response = client.post(
            "/predict", data=blob, content_type="application/json", headers={"Content-Encoding": encoding}
        )
        assert response.status_code == 415 and "Content-Encoding" in response.get_json()["problem"]


def test_identity_content_encoding_is_read_as_usual(client):
    body = json.dumps({"records": [GOOD_ROW]})
    response = client.post(
        "/predict", data=body, content_type="application/json", headers={"Content-Encoding": "identity"}
    )
    assert response.status_code == 200


def test_a_doubled_slash_is_a_json_404_not_an_html_redirect(client):
    reply = client.get("/predict//residential")
    assert reply.status_code == 404 and reply.mimetype == "application/json"
    assert reply.get_json()["status"] == "failure"
    assert client.get("/predict/residential").status_code == 200


def test_a_plain_options_is_a_204_naming_the_methods_with_no_html(client):
    reply = client.options("/predict/residential")
    assert reply.status_code == 204 and reply.data == b""
    assert "Content-Type" not in reply.headers
    assert {m.strip() for m in reply.headers["Allow"].split(",")} >= {"GET", "OPTIONS"}


@pytest.mark.parametrize(
    "headers, problem",
    [
        ({"Host": "x" * 300}, "The Host header is not a host name this service can read"),
        (
            {"Upgrade": "websocket", "Connection": "Upgrade"},
            "This service answers plain HTTP: send the request without Upgrade: websocket",
        ),
    ],
    ids=["host label too long", "websocket upgrade"],
)
def test_werkzeug_s_routing_refusals_say_what_was_wrong(client, headers, problem):
    # both were "The browser (or proxy) sent a request that this server could not understand."
    reply = client.get("/predict/residential", headers=headers)
    assert reply.status_code == 400 and reply.get_json() == {"status": "failure", "success": False, "problem": problem}
