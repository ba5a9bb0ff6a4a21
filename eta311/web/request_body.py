"""A request's raw inputs: its query as UTF-8 text, and its JSON body for any method (the seed's clients send GET with a body)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from flask import current_app, request

from eta311.errors import BadRequest, UnsupportedMediaType
from eta311.web.payloads import NO_BODY, parse_json, read_body


def has_body() -> bool:
    """A declared length or a chunked body (which declares none)."""
    environ = request.environ
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    # Read from the environ: most requests (every GET of a browser or of the seed's clients) declare
    # neither, and werkzeug's header map and length parsing cost more than the rest of this check.
    return chunked or (bool(environ.get("CONTENT_LENGTH")) and bool(request.content_length))


def raw_body() -> bytes:
    """The body's bytes, never more than MAX_BODY_BYTES: a chunked body past it is a 413, not cut short."""
    encoding = request.environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Read as it came, a gzipped body would be parsed as garbage and a plain one would be
        # trusted against its own header: the compressed form this service reads is the base64 payload.
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:40]!r} is not read here: send the JSON itself, or gzip it into a "
            'base64 "payload" field'
        )
    codings = request.environ.get("HTTP_TRANSFER_ENCODING", "chunked").lower().replace(" ", "")
    if codings not in ("", "chunked"):
        # Gunicorn takes "gzip, chunked" (and deflate, compress) but undoes only the chunking: the
        # app would read the compressed bytes as JSON, and trust a plain body that claims gzip.
        raise UnsupportedMediaType(
            f"Transfer-Encoding {codings[:40]!r} is not read here: send the body plain or only chunked, or gzip "
            'it into a base64 "payload" field'
        )
    limit = current_app.config["SETTINGS"].max_body_bytes
    return read_body(request.environ["wsgi.input"], request.content_length, limit)


def json_body() -> Any:
    """The parsed body, or NO_BODY when there is none.

    A POST body must be JSON (415 otherwise). A GET body is read only when it says it is JSON,
    so a GET that carries some other body by accident is answered from its query as before.
    """
    if not has_body():
        return NO_BODY
    mimetype = request.mimetype
    if request.method == "GET" and mimetype != "application/json" and not mimetype.endswith("+json"):
        return NO_BODY
    return parse_json(raw_body(), mimetype)


def utf8_query() -> str:
    """The raw query string as text. Raw bytes that are not UTF-8 (a client that skipped
    percent-encoding) are the client's mistake, a 400; werkzeug's own parse raises there (a 500)."""
    try:
        return request.query_string.decode()
    except UnicodeDecodeError:
        raise BadRequest("The query string is not UTF-8: percent-encode its bytes (%C3%A9, not a raw byte)") from None


def query_dict(query: str) -> dict[str, list[str]]:
    """Each name's values, in order, as urllib's parse_qsl(query, keep_blank_values=True,
    errors="werkzeug.url_quote") gives them to werkzeug, step for step but without its per-pair
    calls for text that has no '+' or '%'."""
    lists: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")  # a bare name has the blank value parse_qsl gives it
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = _unquote(name)
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = _unquote(value)
        if name in lists:
            lists[name].append(value)
        else:
            lists[name] = [value]
    return lists


def _unquote(text: str) -> str:
    """unquote(text, errors="werkzeug.url_quote"). An ASCII text (a query a client percent-encoded)
    is a single run of the ASCII parts unquote splits off and decodes each on its own."""
    if text.isascii():
        return unquote_to_bytes(text).decode("utf-8", "werkzeug.url_quote")
    return unquote(text, errors="werkzeug.url_quote")


def query_lists() -> dict[str, list[str]]:
    """request.args.to_dict(flat=False), parsed as werkzeug parses it, without the MultiDict in between."""
    return query_dict(utf8_query())
