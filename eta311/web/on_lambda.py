"""What AWS Lambda's handlers (Zappa's, serverless-wsgi's) pass or answer unlike Gunicorn, mended for the app."""

from __future__ import annotations

import base64
import binascii
import io
import json

from flask import Flask, Response, jsonify, request

from eta311.errors import ApiError


def mend_zappa_environ(environ: dict) -> None:
    """What Zappa's handler leaves unlike a WSGI server: the client's address, a GET's body and its length."""
    take_gateway_source_ip(environ)
    decode_base64_body_zappa_left(environ)
    if "CONTENT_LENGTH" not in environ and isinstance(environ.get("wsgi.input"), io.BytesIO):
        declare_in_memory_body(environ)


def declare_in_memory_body(environ: dict) -> None:
    """Give a whole in-memory body the CGI length and type every server but Zappa declares.

    Zappa (Lambda) sets CONTENT_LENGTH and CONTENT_TYPE for POST, PUT, PATCH and DELETE only, so a
    GET carrying a JSON body, as the seed's clients send one, looked bodiless and was answered from
    the medians, not the model. serverless-wsgi declares every body's length itself.
    """
    size = environ["wsgi.input"].getbuffer().nbytes
    if not size:
        return  # nothing to declare: a bodiless request stays on the app's quick no-body path
    environ["CONTENT_LENGTH"] = str(size)
    if "CONTENT_TYPE" not in environ and "HTTP_CONTENT_TYPE" in environ:
        environ["CONTENT_TYPE"] = environ["HTTP_CONTENT_TYPE"]


def take_gateway_source_ip(environ: dict) -> None:
    """On Lambda under Zappa, the client's address is the one API Gateway saw, not an X-Forwarded-For entry.

    Zappa takes the second-to-last X-Forwarded-For entry, which is the client only behind an
    edge-optimized REST API (CloudFront appends itself last). An HTTP API or a regional REST API
    appends the client last, so a client sending its own X-Forwarded-For chose its address, and
    with it a fresh anonymous rate-limit bucket per request. API Gateway's own sourceIp cannot be
    set by the client; serverless-wsgi already uses it.
    """
    context = environ["lambda.event"].get("requestContext") or {}
    where = context.get("http") if "http" in context else context.get("identity")
    source_ip = (where or {}).get("sourceIp")
    if isinstance(source_ip, str) and source_ip:
        environ["REMOTE_ADDR"] = source_ip


def decode_base64_body_zappa_left(environ: dict) -> None:
    """Decode a base64 event body that Zappa passed on as it came (a GET's or a HEAD's).

    Zappa's REST API declares every media type binary (binaryMediaTypes */*), so API Gateway
    base64-encodes every body; Zappa decodes it only for POST, PUT, PATCH, DELETE, CONNECT and
    OPTIONS. A GET with a JSON body, as the seed's clients send one, reached the app as base64 text
    and was refused as not JSON. A body that is not base64 stays as it is (the app then answers 400).
    """
    event = environ["lambda.event"]
    body = event.get("body")
    stream = environ.get("wsgi.input")
    if not (event.get("isBase64Encoded") and isinstance(body, str) and body and isinstance(stream, io.BytesIO)):
        return
    if stream.getvalue() != body.encode():
        return  # Zappa decoded it already
    try:
        decoded = base64.b64decode(body, validate=True)
    except binascii.Error:
        return
    environ["wsgi.input"] = io.BytesIO(decoded)
    if "CONTENT_LENGTH" in environ:
        environ["CONTENT_LENGTH"] = str(len(decoded))


# A synchronous Lambda invocation answers at most 6 MB of JSON; Zappa's or serverless-wsgi's envelope
# (status, headers, the body as a JSON string) must fit in it, so the body is measured as it will be sent.
LAMBDA_ANSWER_BYTES = 6 * 1024 * 1024
LAMBDA_ENVELOPE_BYTES = 64 * 1024  # status, headers and field names, with room to spare
LAMBDA_EVENT_KEYS = ("lambda.event", "serverless.event")  # Zappa's, serverless-wsgi's


def lambda_envelope_bytes(response: Response) -> int:
    """About how many bytes the handler's answer for this response takes: the body base64 or JSON-escaped."""
    body = response.get_data()
    if (response.mimetype or "").startswith(("text/", "application/json")):
        return len(json.dumps(body.decode("utf-8", "replace"))) + LAMBDA_ENVELOPE_BYTES
    return (len(body) + 2) // 3 * 4 + LAMBDA_ENVELOPE_BYTES


def refuse_answers_over_the_lambda_limit(app: Flask) -> None:
    """On Lambda, an answer over the invocation's limit becomes this service's JSON 413, not the gateway's 502.

    Lambda refuses such an answer (Function.ResponseSizeTooLarge) and API Gateway turns that into
    a 502 "Internal server error". The echo route can answer more than it was sent: each non-ASCII
    character of msg comes back as a six-byte \\uXXXX escape, then escaped again in the envelope.
    """

    @app.after_request
    def within_the_lambda_limit(response: Response) -> Response:
        if response.is_streamed or not any(key in request.environ for key in LAMBDA_EVENT_KEYS):
            return response
        if len(response.get_data()) < LAMBDA_ANSWER_BYTES // 8:
            return response  # even all escapes and base64 cannot take it over
        if lambda_envelope_bytes(response) <= LAMBDA_ANSWER_BYTES:
            return response
        problem = (
            "The answer would be over AWS Lambda's 6 MB response limit: ask for less (fewer records, a shorter msg)"
        )
        refusal = jsonify(ApiError(problem).body())
        refusal.status_code = 413
        return refusal
