"""The echo blueprint: msg from the query string or a JSON body, answered back unchanged."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .payloads import echo_message, parse_json

echo = Blueprint("echo", __name__)


@echo.route("/", methods=["GET", "POST"], strict_slashes=False)
def echo_message_route():
    document = parse_json(request.get_data(), request.mimetype) if request.method == "POST" and request.content_length else None
    found, message = echo_message(request.args.to_dict(flat=False), document)
    if not found:
        return jsonify({"success": False})
    return jsonify({"response": message, "success": True})
