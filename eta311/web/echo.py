"""The echo blueprint: msg from the query string or a JSON body, answered back unchanged."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from eta311.web.openapi import ECHO
from eta311.web.payloads import NO_BODY, echo_message, parse_json
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
    has_body = request.method == "POST" and request.content_length
    document = parse_json(request.get_data(), request.mimetype) if has_body else NO_BODY
    found, message = echo_message(request.args.to_dict(flat=False), document)
    if not found:
        return jsonify({"success": False})
    return jsonify({"response": message, "success": True})
