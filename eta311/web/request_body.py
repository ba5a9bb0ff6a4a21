"""The JSON body of a request of any method: the seed's clients send GET with a JSON body, as Flask once read."""

from __future__ import annotations

from typing import Any

from flask import request

from eta311.web.payloads import NO_BODY, parse_json


def json_body() -> Any:
    """The parsed body, or NO_BODY when there is none.

    A POST body must be JSON (415 otherwise). A GET body is read only when it says it is JSON,
    so a GET that carries some other body by accident is answered from its query as before.
    """
    if not request.content_length:
        return NO_BODY
    mimetype = request.mimetype
    if request.method == "GET" and mimetype != "application/json" and not mimetype.endswith("+json"):
        return NO_BODY
    return parse_json(request.get_data(), mimetype)
