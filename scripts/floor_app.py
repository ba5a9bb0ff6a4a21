"""The benchmark's floor: a bare Flask JSON endpoint, served by the same Gunicorn config as the service.

That config turns Gunicorn's access log off because the service writes one logfmt line per request
itself (eta311/web/observe.py). The floor writes the same line through the same logging, as
Gunicorn's access log once did for both, so a ratio to the floor measures what the service does
beyond serving and logging a request: its routing, checks, model, answer, request id and metrics.
"""

import logging
import time

from flask import Flask, Response, g, jsonify, request

log = logging.getLogger("eta311.request")
app = Flask(__name__)


@app.before_request
def start() -> None:
    g.started = time.perf_counter()


@app.get("/")
def ok() -> Response:
    return jsonify({"status": "ok"})


@app.after_request
def log_line(response: Response) -> Response:
    seconds = time.perf_counter() - g.started
    fields = {
        "method": request.method,
        "route": "/",
        "status": response.status_code,
        "duration_ms": f"{seconds * 1000:.2f}",
    }
    log.info("request", extra={"fields": fields})
    return response
