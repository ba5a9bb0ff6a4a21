"""The OpenAPI 3.0 document: schemas and each route's operations, assembled from the declared routes and fuzzed by the tests."""

from __future__ import annotations

from typing import Any

from eta311 import __version__
from eta311.model.features import TIMESTAMP_PATTERN
from eta311.web.payloads import LATITUDE_RANGE, LONGITUDE_RANGE, MAX_TYPE_LENGTH
from eta311.web.routes import ServedRoute


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    what = {
        400: "a field is missing, of the wrong type, out of range, unknown, or the body is not JSON",
        401: "no API key, or an unknown one",
        403: "the API key was revoked",
        404: "nothing there",
        405: "wrong method",
        413: "body, decoded payload or batch over its limit",
        415: "the body is not JSON",
        429: "over the plan's rate or daily quota; see Retry-After",
        503: "a dependency is unavailable",
    }
    return {str(code): _json(_ref("Error"), what[code]) for code in codes}


KEYED = [{"apiKey": []}, {"bearer": []}, {}]  # {}: a deployment without keys is open

PREDICTION_RECORD = {
    "type": "object",
    "additionalProperties": False,
    "required": ["complaint_type"],
    "properties": {
        "complaint_type": {"type": "string", "minLength": 1, "maxLength": MAX_TYPE_LENGTH},
        "lat": {"type": "number", "minimum": LATITUDE_RANGE[0], "maximum": LATITUDE_RANGE[1]},
        "lon": {"type": "number", "minimum": LONGITUDE_RANGE[0], "maximum": LONGITUDE_RANGE[1]},
        "date": {
            "type": "string",
            "pattern": TIMESTAMP_PATTERN,
            "example": "2019-06-08 00:00:09",
            "description": "New York local time",
        },
    },
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["status", "success", "problem"],
        "properties": {
            "status": {"type": "string", "enum": ["failure"]},
            "success": {"type": "boolean", "enum": [False]},
            "problem": {"type": "string"},
            "field": {"type": "string"},
            "complaint_type": {"type": "string"},
            "retry_after": {"type": "integer"},
            "key_id": {"type": "string"},
            "index": {"type": "integer"},
        },
    },
    "Estimate": {
        "type": "object",
        "required": ["status", "complaint_type", "estimated_time", "model", "model_version"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "complaint_type": {"type": "string"},
            "estimated_time": {"type": "number", "minimum": 0, "description": "hours to resolution"},
            "interval": {
                "type": "object",
                "required": ["low", "high", "coverage"],
                "properties": {
                    "low": {"type": "number"},
                    "high": {"type": "number"},
                    "coverage": {
                        "type": "number",
                        "nullable": True,
                        "description": "share of held-out requests inside the interval, as the model card measured it",
                    },
                    "coverage_bounds": {
                        "type": "array",
                        "nullable": True,
                        "items": {"type": "number"},
                        "description": "censoring-aware bounds of that share: surely covered, not surely missed",
                    },
                    "nominal": {"type": "number"},
                },
            },
            "fallbacks": {"type": "array", "items": {"type": "string"}},
            "model": {"type": "string", "enum": ["medians", "gbm"]},
            "model_version": {"type": "string", "nullable": True},
            "statistics_version": {
                "type": "string",
                "description": "the type statistics the estimate used (type_stats.json, published daily)",
            },
        },
    },
    "Batch": {
        "type": "object",
        "required": ["status", "count", "failed", "predictions"],
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "count": {"type": "integer", "minimum": 0},
            "failed": {"type": "integer", "minimum": 0},
            "model_version": {"type": "string", "nullable": True},
            "medians_version": {"type": "string", "nullable": True},
            "predictions": {"type": "array", "items": {"oneOf": [_ref("Estimate"), _ref("Error")]}},
        },
    },
    "PredictionRecord": PREDICTION_RECORD,
    "PredictionBody": {
        "oneOf": [
            _ref("PredictionRecord"),
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["records"],
                "properties": {
                    "records": {
                        "type": "array",
                        "items": {},
                        "description": "PredictionRecord objects; each row is checked alone and a bad one fails at its index",
                    }
                },
            },
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["payload"],
                "properties": {
                    "payload": {
                        "type": "string",
                        "format": "byte",
                        "description": "base64 of JSON (optionally gzipped): {records: [...]} or a list",
                    }
                },
            },
        ]
    },
    "Echo": {
        "type": "object",
        "required": ["success"],
        "properties": {"response": {}, "success": {"type": "boolean"}},
    },
}

RATE_HEADERS = {
    name: {"schema": {"type": "string"}} for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _ok(schema: dict, description: str) -> dict:
    return {**_json(schema, description), "headers": RATE_HEADERS}


# Each route's operations, by method; the summary defaults to the route's declared uses.
INDEX = {
    "get": {
        "responses": {
            "200": {
                "description": "the routes as JSON; a client that prefers text/html (a browser) gets the estimate page",
                "content": {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {}}},
            }
        }
    }
}
HEALTH = {"get": {"responses": {"200": _json({"type": "object", "required": ["status"]}, "health")}}}
OPENAPI = {"get": {"responses": {"200": _json({"type": "object"}, "OpenAPI")}}}
MODEL_CARD = {"get": {"responses": {"200": _ok({"type": "object"}, "the card"), **_errors(401, 403, 404, 429, 503)}}}
PREDICT_ONE = {
    "get": {
        "parameters": [
            {"name": "complaint_type", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
            _query("lat", PREDICTION_RECORD["properties"]["lat"], "latitude in New York City"),
            _query("lon", PREDICTION_RECORD["properties"]["lon"], "longitude in New York City"),
            _query("date", PREDICTION_RECORD["properties"]["date"], "when the complaint was made, New York local time"),
        ],
        "responses": {"200": _ok(_ref("Estimate"), "an estimate"), **_errors(400, 401, 403, 429, 503)},
    }
}
PREDICT_MANY = {
    "post": {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PredictionBody")}}},
        "responses": {
            "200": _ok({"oneOf": [_ref("Estimate"), _ref("Batch")]}, "an estimate, or one per record"),
            **_errors(400, 401, 403, 413, 415, 429, 503),
        },
    }
}
METRICS = {
    "get": {
        "security": [{"bearer": []}, {}],  # METRICS_TOKEN as a bearer token; open while it is unset
        "responses": {
            "200": {
                "description": "every worker's metrics in the Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": _json(_ref("Error"), "METRICS_TOKEN is set and the request did not bring it"),
        },
    }
}
ECHO_BODY = {
    "type": "object",
    "properties": {
        "msg": {},
        "encoding": {"type": "string", "enum": ["base64"], "description": "msg must then be valid base64"},
    },
}
ECHO = {
    "get": {
        "summary": "msg back",
        "parameters": [_query("msg", {"type": "string"}, "the message to echo back")],
        "responses": {"200": _ok(_ref("Echo"), "the message"), **_errors(400, 401, 403, 429)},
    },
    "post": {
        "summary": "msg back from a JSON body",
        "requestBody": {"required": False, "content": {"application/json": {"schema": ECHO_BODY}}},
        "responses": {"200": _ok(_ref("Echo"), "the message"), **_errors(400, 401, 403, 413, 415, 429)},
    },
}

# The pages for people (eta311/web/pages.py): HTML, and the files it loads.
DOCS_PAGE = {"get": {"responses": {"200": {"description": "Swagger UI", "content": {"text/html": {"schema": {}}}}}}}
PAGE_FILE = {
    "get": {
        "parameters": [
            {"name": "filename", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        ],
        "responses": {"200": {"description": "the file", "content": {"*/*": {"schema": {}}}}, **_errors(404)},
    }
}


def _operation(route: ServedRoute, method: str) -> dict[str, Any]:
    summary = "; ".join(route.doc.uses.values())
    security = {} if route.doc.keyless else {"security": KEYED}
    return {"summary": summary, **security, **route.doc.operations[method.lower()]}


def openapi_document(routes: list[ServedRoute]) -> dict[str, Any]:
    """The document for these routes (the app's declared ones): each method's operation under its path."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for method in route.methods:
            paths.setdefault(route.openapi_path, {})[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "311 ETA",
            "version": __version__,
            "description": "How long New York will take to resolve a 311 complaint.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
