"""The prediction route's own reading of a request: query parameters as werkzeug parses them, when a GET has a body, and a body that cannot be read."""

import io
import json
import random
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest

from eta311.errors import ApiError
from eta311.web.payloads import read_body
from eta311.web.request_body import query_dict, query_lists

HELD_OUT = Path(__file__).resolve().parents[2] / "bench" / "heldout_requests.json"

QUERIES = [
    "",
    "lat=40.7&lon=-73.9&date=2019-06-08%2000:00:09",
    "lat=40.7&lat=40.8",  # given twice
    "lat=&lon",  # blank and bare
    "date=2019-06-08+00%3A00%3A09",  # '+' is a space
    "lat=%ZZ&lon=%e9",  # invalid escapes and a byte that is not UTF-8 stay percent-encoded
    "a=1;b=2&&c=%26&%3D=x",  # ';' is not a separator; empty pairs; escaped separators
    "caf%C3%A9=th%C3%A9&x=%00",
]


@pytest.mark.parametrize("query", QUERIES)
def test_query_parameters_are_read_as_werkzeug_reads_them(app, query):
    with app.test_request_context("/predict/Noise", query_string=query) as context:
        assert query_lists() == context.request.args.to_dict(flat=False)


def test_query_dict_is_parse_qsl_as_werkzeug_calls_it_on_real_and_scrambled_queries():
    rows = json.loads(HELD_OUT.read_text())
    # The benchmark's URLs: the held-out requests quoted as a client quotes them.
    queries = [f"lat={r['lat']}&lon={r['lon']}&date={quote(r['date'])}" for r in rows[:500]] + QUERIES
    alphabet = "ab=&+%2Fe9ZC3;\x00é "
    scramble = random.Random(16)
    queries += ["".join(scramble.choice(alphabet) for _ in range(scramble.randrange(30))) for _ in range(2000)]
    for query in queries:
        expected: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
            expected.setdefault(name, []).append(value)
        assert query_dict(query) == expected, query
        assert list(query_dict(query)) == list(expected), query  # names in the same order too


def test_a_get_body_counts_when_declared_by_length_or_chunked_and_not_when_empty(client):
    brooklyn = b'{"lat": 40.65, "lon": -73.95, "date": "2019-06-08 00:00:09"}'
    by_length = client.get("/predict/Noise - Residential", data=brooklyn, content_type="application/json")
    chunked = client.get(
        "/predict/Noise - Residential",
        input_stream=io.BytesIO(brooklyn),
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
    )
    assert by_length.status_code == chunked.status_code == 200
    assert by_length.get_json()["model"] == chunked.get_json()["model"] == "gbm"
    assert by_length.get_json()["estimated_time"] == chunked.get_json()["estimated_time"]
    empty = client.get("/predict/Noise - Residential", data=b"", content_type="application/json")
    assert empty.status_code == 200 and empty.get_json()["model"] == "medians"


@pytest.mark.parametrize("path", ["/predict/residential", "/echo"])
def test_raw_bytes_that_are_not_utf8_in_the_query_are_a_400_not_a_500(client, path):
    # a client that skipped percent-encoding: the WSGI server hands the raw bytes on as latin-1
    response = client.get(path, environ_overrides={"QUERY_STRING": "lat=\xff&msg=\xfe"})
    assert response.status_code == 400
    assert "not UTF-8" in response.get_json()["problem"]


def test_a_body_the_server_cannot_read_is_a_400_not_a_500():
    class CutStream(io.BytesIO):
        def read(self, size=-1):
            if self.tell():
                raise OSError("the client went away mid-body")
            return super().read(4)

    with pytest.raises(ApiError) as refused:
        read_body(CutStream(b'{"records": []}'), None, 1000)
    assert refused.value.status_code == 400
    assert refused.value.problem == "The request body could not be read (OSError): resend it whole"
    assert read_body(io.BytesIO(b'{"records": []}'), None, 1000) == b'{"records": []}'


def test_a_body_shorter_than_its_declared_length_is_a_400_not_read_as_whole():
    # Gunicorn hands on what came before the client closed; read as the whole body, a complete record
    # cut off from the rest the client declared was answered as if nothing were missing.
    body = b'{"complaint_type": "Rodent"}'
    with pytest.raises(ApiError) as refused:
        read_body(io.BytesIO(body), len(body) + 50, 1000)
    assert refused.value.status_code == 400
    assert (
        refused.value.problem
        == f"The request body ended after {len(body)} of its declared {len(body) + 50} bytes: resend it whole"
    )
    assert read_body(io.BytesIO(body), len(body), 1000) == body
