"""The Lambda adaptations on their own (tests/test_lambda.py drives them through Zappa's handler)."""

import io

from eta311.web.on_lambda import declare_in_memory_body


def test_an_in_memory_body_is_declared_with_its_length_and_type():
    environ = {"wsgi.input": io.BytesIO(b'{"lat": 40.7}'), "HTTP_CONTENT_TYPE": "application/json"}
    declare_in_memory_body(environ)
    assert environ["CONTENT_LENGTH"] == "13" and environ["CONTENT_TYPE"] == "application/json"


def test_a_bodiless_request_is_left_undeclared():
    # A declared "0" would send every bodiless GET through werkzeug's length parsing (5 us a request).
    environ = {"wsgi.input": io.BytesIO(b""), "HTTP_CONTENT_TYPE": "application/json"}
    declare_in_memory_body(environ)
    assert "CONTENT_LENGTH" not in environ and "CONTENT_TYPE" not in environ
