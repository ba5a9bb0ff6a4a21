"""What an operator sees of each request: its id (Heroku's X-Request-ID or a new one), its metrics and log line; /metrics."""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import re
import secrets
import time

from flask import Blueprint, Flask, Response, current_app, request

from eta311.errors import Unauthorized
from eta311.logfmt import log_info_line, request_fields
from eta311.web import metrics
from eta311.web.openapi import METRICS
from eta311.web.routes import route

log = logging.getLogger("eta311.request")
# Heroku's router sends a UUID (and passes on a client's id of 20-200 characters). Anything else
# is replaced: the id goes into headers and log lines, so no spaces, quotes or control characters.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
OBSERVED = "eta311.observed"  # the environ key of (start time, log fields) of the request being served


class _RequestIds:
    """Fresh ids: a random prefix per process and a counter (a uuid4 costs a system call a request)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # workers must not repeat the master's ids

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}-{next(self.counter):x}"


_ids = _RequestIds()


def request_id(given: str | None) -> str:
    """The caller's X-Request-ID if it is safe to echo and log, else a fresh one."""
    if given and REQUEST_ID.fullmatch(given):
        return given
    return _ids.new()


def install_observer(app: Flask) -> None:
    """Installed before any other hook, so even a request the gate refuses gets its id, count and line."""

    @app.before_request
    def start() -> None:
        # Set anew for every request: a thread (gthread) or greenlet never sees an earlier request's.
        environ = request.environ
        fields = {"request_id": request_id(environ.get("HTTP_X_REQUEST_ID"))}
        request_fields.set(fields)
        # In the request's own environ rather than on flask.g: each proxy lookup costs on every request.
        environ[OBSERVED] = (time.perf_counter(), fields)

    @app.after_request
    def finish(response: Response) -> Response:
        current = request._get_current_object()  # one proxy lookup, not one per attribute
        observed = current.environ.get(OBSERVED)
        if observed is None:  # routing failed before our hook ran: still an id and a line
            observed = (time.perf_counter(), {"request_id": request_id(current.environ.get("HTTP_X_REQUEST_ID"))})
            request_fields.set(observed[1])
        started, fields = observed
        seconds = time.perf_counter() - started
        response.headers["X-Request-ID"] = fields["request_id"]
        rule = current.url_rule
        route = rule.rule if rule is not None else metrics.UNMATCHED
        metrics.observe_request(route, current.method, response.status_code, seconds)
        log_info_line(
            log,
            "request",
            {
                "method": current.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": f"{seconds * 1000:.2f}",
            },
        )
        request_fields.set(None)  # a thread serves one request after another: lines between carry no id
        return response


metrics_blueprint = Blueprint("metrics", __name__)


@route(
    metrics_blueprint,
    "/metrics",
    ("GET",),
    uses="Prometheus metrics of every worker of this server (Authorization: Bearer METRICS_TOKEN when set)",
    operations=METRICS,
    keyless=True,  # never behind an API key or a rate limit: it has its own token
)
def scrape() -> Response:
    token = current_app.config["SETTINGS"].metrics_token
    if token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("Send the metrics token as Authorization: Bearer <token>")
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
