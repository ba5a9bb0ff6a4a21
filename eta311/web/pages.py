"""Pages for people: the estimate page at / for browsers, Swagger UI at /docs, their static assets."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from eta311.web import openapi as api
from eta311.web.routes import route

pages = Blueprint("pages", __name__, template_folder="templates")

STATIC = Path(__file__).resolve().parent / "static"
NEW_YORK = ZoneInfo("America/New_York")
MAP_GRID = json.loads((STATIC / "map.json").read_text())
# Only what /docs loads is served from the Swagger UI package (no source maps, no sample pages).
SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
# Every script and style comes from this origin as a file: no inline code, nothing from a CDN.
# img-src data: shows the echoed image and Swagger UI's icons; blob: is not needed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def prefers_html() -> bool:
    """A browser asks for text/html above JSON; no Accept header, */* or JSON first keep the JSON answer."""
    accept = request.accept_mimetypes  # the quality of each type; 0 when not asked for at all
    return accept["text/html"] > accept["application/json"]


def _page(html: str) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _complaint_types() -> list[dict]:
    """The types the model knows (else those with a median), each with its median hours if there is one."""
    snapshot = current_app.extensions["model_store"].snapshot
    known = snapshot.card["complaint_types"] if snapshot.card else sorted(snapshot.medians)
    return [{"name": name, "median": snapshot.medians.get(name)} for name in known]


def estimate_page() -> Response:
    snapshot = current_app.extensions["model_store"].snapshot
    now = datetime.now(NEW_YORK).strftime("%Y-%m-%dT%H:%M")
    return _page(
        render_template(
            "estimate.html",
            types=_complaint_types(),
            now=now,
            grid=MAP_GRID,
            model_version=snapshot.model_version,
            keys_required=current_app.extensions["gate"].keys_required,
        )
    )


@pages.before_app_request
def page_for_browsers() -> Response | None:
    """GET / from a browser is the page; every other client keeps the JSON index at the same address."""
    if request.endpoint == "predict.index" and request.method in ("GET", "HEAD") and prefers_html():
        return estimate_page()
    return None


@pages.after_app_request
def vary_on_accept(response: Response) -> Response:
    if request.endpoint == "predict.index":
        response.vary.add("Accept")  # one address, two representations: caches must keep them apart
    return response


@route(
    pages,
    "/docs",
    ("GET",),
    uses="Swagger UI for this API, reading /openapi.json",
    operations=api.DOCS_PAGE,
    keyless=True,
)
def docs() -> Response:
    return _page(render_template("docs.html"))


@route(
    pages,
    "/docs/<path:filename>",
    ("GET",),
    uses="Swagger UI's own files, from the swagger-ui-bundle package",
    operations=api.PAGE_FILE,
    keyless=True,
)
def docs_asset(filename: str) -> Response:
    if filename not in SWAGGER_FILES:
        abort(404)
    return _file(Path(str(swagger_ui_path)), filename)


@route(
    pages,
    "/static/<path:filename>",
    ("GET",),
    uses="the page's script, style sheet and map (eta311/web/static)",
    operations=api.PAGE_FILE,
    keyless=True,
)
def static(filename: str) -> Response:
    return _file(STATIC, filename)


def _file(folder: Path, filename: str) -> Response:
    """A file, answering conditional requests; a failed If-Match is the JSON failure like any other."""
    response = send_from_directory(folder, filename, max_age=3600)
    if response.status_code == 412:
        # werkzeug sets the status but keeps the whole file as the body of the refusal
        response.close()
        abort(412)
    return response
