"""Batch rows checked in bulk decide exactly as one record checked alone."""

import numpy as np

from eta311.errors import ApiError
from eta311.web.payloads import check_records, prediction_request

ROWS = [
    {"complaint_type": "Noise - Residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"},
    {"complaint_type": "rodent", "date": " 2019-06-08T10:00:00.000 "},  # no coordinates, padded date
    {"complaint_type": "Rodent"},  # median only
    {"complaint_type": "rodent", "lat": "40.7", "lon": "-73.9", "date": "2019-06-08"},  # strings, as Socrata sends
    {"complaint_type": "rodent", "lat": 40, "lon": -74, "date": "2019-06-08"},  # integers
    {"complaint_type": "rodent", "lat": 41.7, "lon": -73.9, "date": "2019-06-08"},  # outside NYC
    {"complaint_type": "rodent", "lat": 40.7, "lon": -75.0, "date": "2019-06-08"},
    {"complaint_type": "rodent", "lat": float("inf"), "lon": -73.9, "date": "2019-06-08"},
    {"complaint_type": "rodent", "lat": 40.7, "lon": -73.9},  # coordinates need a date
    {"complaint_type": "rodent", "lat": 40.7, "date": "2019-06-08"},  # lat without lon
    {"complaint_type": "rodent", "date": "2019-06-08T25:00:00"},  # no such hour
    {"complaint_type": "rodent", "date": "June 8th"},
    {"complaint_type": "rodent", "date": 20190608},
    {"complaint_type": "   ", "date": "2019-06-08"},
    {"complaint_type": "x" * 121},
    {"complaint_type": 7},
    {"complaint_type": "rodent", "when": "2019-06-08"},  # unknown field
    {"complaint_type": "rodent", "lat": True, "lon": -73.9, "date": "2019-06-08"},
    {"complaint_type": "rodent", "lat": 10**400, "lon": -73.9, "date": "2019-06-08"},  # past float range
    ["not", "an", "object"],
    None,
    {},
]


def alone(row: object) -> tuple[str, object]:
    try:
        if not isinstance(row, dict):
            raise ApiError("Each record must be a JSON object")
        request = prediction_request(row)
    except ApiError as error:
        return "failed", error.body()
    if not request.wants_model:
        return "median", request.complaint_type
    lat, lon = (np.nan if v is None else v for v in (request.lat, request.lon))
    return "model", (request.complaint_type, lat, lon, request.stamp)


def test_bulk_checks_decide_every_row_as_prediction_request_does():
    rows = ROWS * 3  # a batch large enough that the bulk path carries most rows
    checked = check_records(rows)
    decided: dict[int, tuple[str, object]] = {}
    for index, error in checked.failures:
        decided[index] = ("failed", error.body())
    for index, kind in zip(checked.median_rows, checked.median_types):
        decided[index] = ("median", kind)
    for index, kind, lat, lon, stamp in zip(
        checked.model_rows, checked.complaint_types, checked.lats, checked.lons, checked.stamps
    ):
        lat, lon = (np.nan if v is None else v for v in (lat, lon))
        decided[index] = ("model", (kind, lat, lon, stamp))
    assert sorted(decided) == list(range(len(rows)))
    for index, row in enumerate(rows):
        got, expected = decided[index], alone(row)
        assert got[0] == expected[0], (row, got, expected)
        if got[0] == "model":
            np.testing.assert_equal(got[1], expected[1])
        else:
            assert got[1] == expected[1], row
    assert (len(checked.model_rows), len(checked.median_rows), len(checked.failures)) == (3 * 3, 3 * 1, 3 * 18)


def walk_only(blob: bytes, max_values: int) -> str:
    from eta311.web.payloads import MAX_JSON_DEPTH, _Shape

    try:
        _Shape(None).check(blob, MAX_JSON_DEPTH, max_values)
    except ApiError as error:
        return f"{error.status_code} {error.body()}"
    return "passes"


def test_large_bodies_are_judged_as_the_token_walk_judges_them():
    import json

    from eta311.web.payloads import check_json_shape

    record = {"complaint_type": "Noise - Residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}
    batch = {"records": [record] * 300}
    bodies = [
        json.dumps(batch).encode(),
        json.dumps({"records": [{**record, "complaint_type": "[[[{{{,,,"}] * 300}).encode(),  # structure in strings
        json.dumps({"records": [{**record, "complaint_type": 'say "hi" [' + "\\\\"}] * 300}).encode(),  # escapes
        b'{"records": [' + b",".join([b'{"complaint_type": "rodent"}'] * 300) + b"]" + b'"',  # an odd quote
        json.dumps({"records": [[[[record]]]] * 100}).encode(),
        ("[" * 40 + "1" + "]" * 40).encode(),  # too deep
        json.dumps({"records": [[1] * 40] * 40}).encode(),  # deep enough to count, not too deep
        json.dumps({"records": list(range(3000))}).encode(),  # too many values for the limit below
    ]
    for blob in bodies:
        try:
            check_json_shape(blob, 2500)
            judged = "passes"
        except ApiError as error:
            judged = f"{error.status_code} {error.body()}"
        assert judged == walk_only(blob, 2500), blob[:80]
    assert walk_only(bodies[0], 2500) == "passes" and walk_only(bodies[5], 2500) != "passes"


def test_batch_bodies_are_read_as_json_loads_reads_them():
    """parse_json reads batches with orjson first: every body gives json.loads' values, or the same row failures."""
    import json

    from eta311.web.payloads import parse_json

    record = {"complaint_type": "Noise - Residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}
    text = json.dumps({"records": [record, {**record, "lat": 40.123456789012345678}, {"complaint_type": "é"}]})
    bodies = {
        "plain": text.encode(),
        "lone surrogate": text.replace("é", "\\ud800").encode(),
        "NaN": text.replace("40.7", "NaN").encode(),
        "past a float": text.replace("40.7", "1e400").encode(),
        "BOM": b"\xef\xbb\xbf" + text.encode(),
        "UTF-16": text.encode("utf-16"),
    }
    for name, body in bodies.items():
        document = parse_json(body, "application/json", None, None, True)
        assert repr(document) == repr(json.loads(body, parse_constant=float)), name
    # Past 64 bits orjson reads an integer as a float (and json.loads' reading here makes one of
    # 400 digits infinite): the row fails with the same message all the same.
    for digits in (30, 400):
        wide = text.replace("40.7", "1" * digits).encode()
        read = check_records(parse_json(wide, "application/json", None, None, True)["records"])
        expected = check_records(json.loads(wide)["records"])
        assert [(i, e.body()) for i, e in read.failures] == [(i, e.body()) for i, e in expected.failures]
        assert read.failures and read.failures[0][0] == 0


def test_batches_read_before_their_shape_is_walked_are_judged_as_the_walk_judges_them():
    """parse_json reads a body with few enough values first and walks its shape only when the document
    does not show it flat: every body gives the same document or the same error as walking first."""
    import json

    import orjson

    from eta311.web.payloads import check_json_shape, parse_json

    record = {"complaint_type": "Noise - Residential", "lat": 40.7, "lon": -73.9, "date": "2019-06-08 00:00:09"}
    deep = "[" * 40 + "1" + "]" * 40
    bodies = [
        {"records": [record] * 300},  # flat: three levels, seen from the document
        [record] * 300,  # a payload's bare list
        {"records": [{**record, "complaint_type": "[[[{{{"}] * 300},  # brackets in strings: walked
        {"records": [record] * 299 + [{**record, "lat": json.loads(deep)}]},  # one row too deep
        {"records": [record] * 299 + [{**record, "lat": [[1]]}]},  # deeper, within the limit
        {"records": [record] * 300, "x": [[[]]]},
        {"records": [[record]] * 300},
        json.loads(deep),
        {"records": list(range(3000))},  # too many values
    ]
    texts = [json.dumps(body).encode() for body in bodies] + [
        json.dumps({"records": [record] * 300}).encode()[:-5],  # cut short: json.loads says why
        b'{"records": [' + b"[" * 40 + b"]",  # too deep and cut short
        json.dumps({"records": [record] * 300}).replace("40.7", "NaN").encode(),
    ]

    def walked_first(text: bytes) -> str:
        try:
            check_json_shape(text, 2500)
        except ApiError as error:
            return f"{error.status_code} {error.body()}"
        try:
            return repr(orjson.loads(text))
        except orjson.JSONDecodeError:
            return "json.loads"  # read by parse_json's json.loads path, after the walk

    for text in texts:
        try:
            read_first = repr(parse_json(text, "application/json", 2500, None, True))
        except ApiError as error:
            read_first = f"{error.status_code} {error.body()}"
        expected = walked_first(text)
        if expected == "json.loads":
            assert "nested deeper" not in read_first and "values" not in read_first, text[:80]
        else:
            assert read_first == expected, text[:80]
    assert sum(walked_first(text) == "json.loads" for text in texts) == 2
