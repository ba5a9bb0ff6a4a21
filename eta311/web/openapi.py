"""The OpenAPI 3.0 description of every route, served at /openapi.json and fuzzed by the tests."""

from __future__ import annotations

from eta311 import __version__
from eta311.web.payloads import LATITUDE_RANGE, LONGITUDE_RANGE, MAX_TYPE_LENGTH


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


DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
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
            "pattern": DATE_PATTERN,
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
                "properties": {"low": {"type": "number"}, "high": {"type": "number"}, "coverage": {"type": "number"}},
            },
            "fallbacks": {"type": "array", "items": {"type": "string"}},
            "model": {"type": "string", "enum": ["medians", "gbm"]},
            "model_version": {"type": "string", "nullable": True},
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


def openapi_document() -> dict:
    def query(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    ok = lambda schema, description: {**_json(schema, description), "headers": RATE_HEADERS}  # noqa: E731
    echo_params = [query("msg", {"type": "string"}, "the message to echo back")]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "311 ETA",
            "version": __version__,
            "description": "How long New York will take to resolve a 311 complaint.",
        },
        "paths": {
            "/": {"get": {"summary": "the routes", "responses": {"200": _json({"type": "object"}, "routes")}}},
            "/health": {
                "get": {
                    "summary": "liveness and loaded versions",
                    "responses": {"200": _json({"type": "object", "required": ["status"]}, "health")},
                }
            },
            "/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": _json({"type": "object"}, "OpenAPI")}}
            },
            "/model": {
                "get": {
                    "summary": "the model card",
                    "security": KEYED,
                    "responses": {"200": ok({"type": "object"}, "the card"), **_errors(401, 403, 404, 429, 503)},
                }
            },
            "/predict/{complaint_type}": {
                "get": {
                    "summary": "median hours for a type, or the model's estimate with lat, lon and date",
                    "security": KEYED,
                    "parameters": [
                        {
                            "name": "complaint_type",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        },
                        query("lat", PREDICTION_RECORD["properties"]["lat"], "latitude in New York City"),
                        query("lon", PREDICTION_RECORD["properties"]["lon"], "longitude in New York City"),
                        query(
                            "date",
                            PREDICTION_RECORD["properties"]["date"],
                            "when the complaint was made, New York local time",
                        ),
                    ],
                    "responses": {"200": ok(_ref("Estimate"), "an estimate"), **_errors(400, 401, 403, 429, 503)},
                }
            },
            "/predict": {
                "post": {
                    "summary": "one record, a batch, or a base64 (gzipped) payload",
                    "security": KEYED,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("PredictionBody")}},
                    },
                    "responses": {
                        "200": ok({"oneOf": [_ref("Estimate"), _ref("Batch")]}, "an estimate, or one per record"),
                        **_errors(400, 401, 403, 413, 415, 429, 503),
                    },
                }
            },
            "/echo": {
                "get": {
                    "summary": "msg back",
                    "security": KEYED,
                    "parameters": echo_params,
                    "responses": {"200": ok(_ref("Echo"), "the message"), **_errors(400, 401, 403, 429)},
                },
                "post": {
                    "summary": "msg back from a JSON body",
                    "security": KEYED,
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "msg": {},
                                        "encoding": {
                                            "type": "string",
                                            "enum": ["base64"],
                                            "description": "msg must then be valid base64",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"200": ok(_ref("Echo"), "the message"), **_errors(400, 401, 403, 413, 415, 429)},
                },
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
