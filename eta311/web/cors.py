"""CORS for the API routes: which other origins' pages may call the service, preflights answered."""

from __future__ import annotations

from collections.abc import Collection

from flask import Flask, Response, request

# A browser page on another origin sends a key in one of these, and JSON bodies need Content-Type.
ALLOWED_HEADERS = "Content-Type, x-api-key, Authorization"
# Without this list a page's script cannot read how close it is to its limits.
EXPOSED_HEADERS = ", ".join(
    [
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
    ]
)
# Browsers cache a preflight this long (Chromium caps it at 2 hours).
PREFLIGHT_MAX_AGE_SECONDS = "600"


def allowed_origin(origin: str | None, origins: Collection[str]) -> str | None:
    """The Access-Control-Allow-Origin value for this request's Origin, or None to send no CORS headers."""
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"  # no cookies are ever read, so the wildcard gives away nothing a key does not
    return origin if origin in origins else None


def install_cors(app: Flask, origins: Collection[str], skip_blueprints: Collection[str] = ()) -> None:
    """Answer preflights before the gate sees them (they carry no key) and mark allowed answers.

    Register it before the gate: before_request hooks run in order, and a preflight answered here
    never reaches the key check.
    """
    if not origins:
        return

    def applies() -> bool:
        return request.blueprint not in skip_blueprints  # unknown routes too, so a page can read their 404

    @app.before_request
    def preflight():
        is_preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if not is_preflight or request.url_rule is None or not applies():
            return None
        response = Response(status=204)
        del response.headers["Content-Type"]  # no body
        allow = allowed_origin(request.headers.get("Origin"), origins)
        if allow:
            methods = sorted(request.url_rule.methods - {"HEAD"})
            response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_SECONDS
        return response

    @app.after_request
    def mark(response: Response) -> Response:
        if "*" not in origins:
            response.vary.add("Origin")  # caches must not hand one origin's answer to another
        allow = allowed_origin(request.headers.get("Origin"), origins)
        if allow and applies() and response.mimetype != "text/html":  # a page is for people, not other sites' scripts
            response.headers["Access-Control-Allow-Origin"] = allow
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
