"""Every route declared once, at its view: the declaration registers it and feeds the index, OpenAPI and the README.

To add a route, decorate its view with `route(blueprint, rule, methods, uses=..., operations=...)` (a rule
whose view Flask makes itself, like static files, with `declare(app, endpoint, ...)`); its path and methods
then come from Flask's URL map, and `tests/test_docs.py` fails until the README table, which
`scripts/readme_routes.py` rewrites, has it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask

# Flask answers these for every route by itself; they are not part of what a route declares.
AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # <path:complaint_type> -> complaint_type


@dataclass(frozen=True)
class RouteDoc:
    """What a route is for: one line per way of calling it, its OpenAPI operations, and whether it needs a key."""

    uses: Mapping[str, str]  # query suffix ("" or "?lat=&lon=&date=") -> what that call answers
    operations: Mapping[str, Mapping[str, Any]]  # lower-case method -> OpenAPI operation object
    keyless: bool = False  # answered without a key even when keys are required (discovery, liveness)


@dataclass(frozen=True)
class ServedRoute:
    """A declared route as an app serves it: the path and methods from the URL map, the rest from its RouteDoc."""

    path: str  # Flask's form without converters: /predict/<complaint_type>
    methods: tuple[str, ...]
    endpoint: str
    doc: RouteDoc

    @property
    def openapi_path(self) -> str:
        return _PARAMETER.sub(r"{\1}", self.path)

    @property
    def calls(self) -> Iterator[tuple[str, str]]:
        """("GET|POST /echo", what it answers) for each way of calling it."""
        for suffix, answer in self.doc.uses.items():
            yield f"{'|'.join(self.methods)} {self.path}{suffix}", answer


def route(
    blueprint: Blueprint,
    rule: str,
    methods: tuple[str, ...],
    *,
    uses: Mapping[str, str] | str,
    operations: Mapping[str, Mapping[str, Any]],
    keyless: bool = False,
    **options: Any,
) -> Callable[[Callable], Callable]:
    """Register the view on the blueprint and attach what it is for (uses: one line, or one per query suffix)."""

    def register(view: Callable) -> Callable:
        view.route_doc = RouteDoc({"": uses} if isinstance(uses, str) else dict(uses), dict(operations), keyless)
        blueprint.add_url_rule(rule, view_func=view, methods=list(methods), **options)
        return view

    return register


def declare(
    app: Flask,
    endpoint: str,
    *,
    uses: Mapping[str, str] | str,
    operations: Mapping[str, Mapping[str, Any]],
    keyless: bool = False,
) -> None:
    """Declare a rule whose view Flask made itself (static files: a bound method takes no attribute)."""
    doc = RouteDoc({"": uses} if isinstance(uses, str) else dict(uses), dict(operations), keyless)
    app.extensions.setdefault("route_docs", {})[endpoint] = doc


def route_doc(app: Flask, endpoint: str | None) -> RouteDoc | None:
    """The declaration of an endpoint: on its view, or made with declare(); None if it has none."""
    if endpoint is None:
        return None
    declared = getattr(app.view_functions.get(endpoint), "route_doc", None)
    return declared or app.extensions.get("route_docs", {}).get(endpoint)


def served_routes(app: Flask) -> list[ServedRoute]:
    """The app's declared routes in URL-map order; a rule without a declaration is left out (the docs test fails)."""
    served = []
    for rule in app.url_map.iter_rules():
        doc = route_doc(app, rule.endpoint)
        if doc is not None:
            methods = tuple(sorted((rule.methods or set()) - AUTOMATIC_METHODS))
            served.append(ServedRoute(_PARAMETER.sub(r"<\1>", rule.rule), methods, rule.endpoint, doc))
    return served


def route_index(app: Flask) -> dict[str, str]:
    """GET /'s list: each way of calling each route, and what it answers."""
    return {call: answer for served in served_routes(app) for call, answer in served.calls}


def readme_table(app: Flask) -> str:
    """The README's route table, in Markdown (`|` cannot sit in a cell, so methods get one code span each)."""
    rows = ["| route | answers |", "| --- | --- |"]
    for served in served_routes(app):
        for suffix, answer in served.doc.uses.items():
            calls = ", ".join(f"`{method} {served.path}{suffix}`" for method in served.methods)
            rows.append(f"| {calls} | {answer} |")
    return "\n".join(rows) + "\n"
