"""The echo blueprint: msg from the query string or a JSON body, answered back unchanged."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from eta311.web.openapi import ECHO
from eta311.web.payloads import NO_BODY, echo_message
from eta311.web.request_body import json_body, query_lists
from eta311.web.routes import route

echo = Blueprint("echo", __name__)


@route(
    echo,
    "",  # "" so the mount point itself is the route
    ("GET", "POST"),
    uses="msg back unchanged (gunicorn echo:app serves echo alone at /)",
    operations=ECHO,
    strict_slashes=False,
)
def echo_message_route() -> Response:
    args = query_lists()
    document = NO_BODY if "msg" in args else json_body()  # the query wins where both are given
    found, message = echo_message(args, document)
    if not found:
        return jsonify({"success": False})
    return jsonify({"response": message, "success": True})
