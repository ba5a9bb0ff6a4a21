"""create_app(): settings, the model store, one JSON error handler, and the blueprints."""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import BadHost, HTTPException
from werkzeug.routing import WebsocketMismatch

from eta311.errors import ApiError
from eta311.logfmt import configure_root
from eta311.settings import BUNDLED_MODELS, Settings
from eta311.storage import Store, open_store
from eta311.web import on_lambda
from eta311.web.cors import install_cors
from eta311.web.gate.gate import Gate, build_gate
from eta311.web.observe import install_observer, metrics_blueprint
from eta311.web.routes import route_doc
from eta311.web.served import ModelStore

log = logging.getLogger(__name__)

# werkzeug's own 400s say only "The browser (or proxy) sent a request that this server could not understand".
ROUTING_PROBLEMS = {
    BadHost: "The Host header is not a host name this service can read",
    WebsocketMismatch: "This service answers plain HTTP: send the request without Upgrade: websocket",
}
HTTP_PROBLEMS = {
    404: "No such route; see GET / for the routes this service answers",
    405: "This route does not answer that method",
    413: "The request body is over the size limit",
    415: "Send JSON with Content-Type: application/json",
}


class ServiceFlask(Flask):
    """Flask, asking once per function, not once per call, whether a hook or view is a coroutine.

    Flask calls ensure_sync on every hook and view of every request (five on a prediction), and
    inspect's coroutine check was about 4% of a request's CPU in-process. It also reads an empty
    path as "/", answers OPTIONS with 204, and mends what Zappa's handler passes (on_lambda).
    """

    MAX_KNOWN_FUNCTIONS = 1024  # hooks, views and handlers are a fixed set; a function made per call is not kept

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_functions: set[Callable] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if func in self._plain_functions:
            return func
        wrapped = super().ensure_sync(func)
        # Only plain functions are kept: a bound method (a class-based view's, made per request)
        # would keep its instance alive, and a plain function's code cannot turn into a coroutine.
        plain = wrapped is func and type(func) is types.FunctionType
        if plain and len(self._plain_functions) < self.MAX_KNOWN_FUNCTIONS:
            self._plain_functions.add(func)
        return wrapped

    def wsgi_app(self, environ: dict, start_response: Callable) -> Any:
        if not environ.get("PATH_INFO"):
            # "GET http://host HTTP/1.1" (absolute form, no path) comes from Gunicorn with an empty path,
            # which RFC 9110 reads as "/"; werkzeug answered it with a 308 to the Host header's site and
            # an HTML page.
            environ["PATH_INFO"] = "/"
        if "lambda.event" in environ:  # Zappa's handler; Gunicorn's requests pay this one lookup
            on_lambda.mend_zappa_environ(environ)
        return super().wsgi_app(environ, start_response)

    def make_default_options_response(self) -> Response:
        """OPTIONS that is not a CORS preflight: 204 with the Allow header, not an empty text/html 200."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def _error_response(status: int, body: dict) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Every failure, routing and size errors included, answers with the one JSON shape."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        response = _error_response(error.status_code, error.body())
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        problem = ROUTING_PROBLEMS.get(type(error)) or HTTP_PROBLEMS.get(status, error.description or error.name)
        response = _error_response(status, ApiError(problem).body())
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return _error_response(500, ApiError("Internal error; the service logged it").body())


def install_gate(app: Flask, gate: Gate, settings: Settings) -> None:
    """Every request to a keyed route passes the gate first; its rate-limit headers go on the answer."""
    if gate.admits_everyone:
        return  # settings are fixed for the app's life: an open gate needs no hook on every request

    @app.before_request
    def admit() -> None:
        if request.endpoint is None:
            return  # unknown routes answer 404/405 as they would anyway
        doc = route_doc(app, request.endpoint)
        if doc is not None and doc.keyless:
            return  # discovery and liveness stay open, so load balancers, uptime checks and clients find their way
        if request.blueprint == "echo" and not settings.echo_requires_key:
            return
        g.rate_limit_headers = gate.admit(request.headers, request.remote_addr)

    @app.after_request
    def add_rate_limit_headers(response: Response) -> Response:
        response.headers.update(g.get("rate_limit_headers", {}))
        return response


def _base_app(settings: Settings) -> Flask:
    if not logging.getLogger().handlers:  # under Gunicorn its logger class has set this up already
        configure_root(settings.log_level)
    logging.getLogger("eta311").setLevel(settings.log_level)
    # No static folder: Flask would otherwise add /static/<path:filename>, an undeclared route serving nothing.
    app = ServiceFlask("eta311", static_folder=None)
    # "/predict//rodent" is a 404 in JSON like any unknown path, not a 308 whose body is HTML.
    app.url_map.merge_slashes = False
    if settings.observe_requests:
        install_observer(app)  # first, so every answer (a refusal by the gate too) has its id and log line
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SETTINGS"] = settings
    app.json.sort_keys = False  # answers read in the order they are built: status first
    register_error_handlers(app)
    if os.environ.get("LAMBDA_TASK_ROOT"):  # set by the Lambda runtime: Gunicorn's requests skip the hook
        on_lambda.refuse_answers_over_the_lambda_limit(app)
    return app


def create_echo_app(settings: Settings | None = None) -> Flask:
    """The echo service alone, at /."""
    from eta311.web.echo import echo

    settings = settings or Settings.from_env()
    app = _base_app(settings)
    app.extensions["gate"] = gate = build_gate(settings)
    install_cors(app, settings.cors_origins)  # before the gate: a preflight carries no key
    install_gate(app, gate, settings)
    app.register_blueprint(echo, url_prefix="/")
    app.register_blueprint(metrics_blueprint)
    return app


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    """The prediction service: /predict, /health, /model, and echo at /echo."""
    from eta311.web.echo import echo
    from eta311.web.pages import pages
    from eta311.web.predict import predict

    settings = settings or Settings.from_env()
    app = _base_app(settings)
    fallback = open_store(settings.fallback_uri) if settings.fallback_uri else None
    primary = store or open_store(settings.model_uri, settings.s3_endpoint_url)
    # The service keeps a copy of the last good version beside what is published, but never
    # writes into the repository's own models/ folder when that is what it serves (tools, fuzzing).
    bundled = not settings.model_uri.startswith("s3://") and Path(settings.model_uri).resolve() == BUNDLED_MODELS
    models = ModelStore(primary, settings.reload_interval_seconds, fallback, record_last_good=not bundled)
    models.refresh()
    if models.current.model is None:
        log.warning("no model loaded from %s: only the median route answers", primary.uri)
    app.extensions["model_store"] = models
    app.extensions["gate"] = gate = build_gate(settings)
    install_cors(app, settings.cors_origins, skip_blueprints={"pages"})  # before the gate: a preflight carries no key
    install_gate(app, gate, settings)
    app.register_blueprint(predict)
    app.register_blueprint(pages)
    app.register_blueprint(echo, url_prefix="/echo")
    app.register_blueprint(metrics_blueprint)
    return app
