"""The prediction blueprint: medians and model estimates, one or in batches, health and model card."""

from __future__ import annotations

import contextlib
import threading

from flask import Blueprint, Response, current_app, jsonify, request

from eta311 import __version__
from eta311.errors import BadRequest, NotFound
from eta311.web import metrics
from eta311.web import openapi as api
from eta311.web.batch_reply import BatchReply, batch_reply
from eta311.web.estimates import answer, json_response
from eta311.web.idle_trim import IdleTrim
from eta311.web.offload import off_loop
from eta311.web.payloads import (
    NO_BODY,
    batch_records,
    max_json_values,
    parse_json,
    prediction_request,
    query_request,
)
from eta311.web.request_body import json_body, query_lists, raw_body
from eta311.web.routes import route, route_index, served_routes
from eta311.web.served import ModelStore, Snapshot

predict = Blueprint("predict", __name__)
BATCH_SLOT = threading.Lock()
SMALL_BATCH_ROWS = 100
LARGE_BODY_BYTES = 64 * 1024
LARGE_BODIES = IdleTrim()


def _models() -> ModelStore:
    return current_app.extensions["model_store"]


@route(
    predict,
    "/",
    ("GET",),
    uses="the service, its version and its routes (a browser asking for HTML gets the estimate page)",
    operations=api.INDEX,
    keyless=True,
)
def index() -> Response:
    return jsonify({"service": "311 ETA", "version": __version__, "routes": route_index(current_app)})


def _counted(result: dict) -> dict:
    metrics.predicted("model" if result["model"] == "gbm" else "medians", result["model_version"])
    return result


@route(
    predict,
    "/predict/<path:complaint_type>",
    ("GET",),
    uses={
        "": "the median hours to resolution for that type",
        "?lat=&lon=&date=": "the model's estimate, with an 80% interval",
    },
    operations=api.PREDICT_ONE,
)
def predict_one(complaint_type: str) -> Response:
    snapshot = _models().snapshot
    return json_response(_counted(answer(snapshot, query_request(complaint_type, _query_and_body()))))


def _query_and_body() -> dict[str, list]:
    """The query's parameters, plus lat, lon and date from a JSON body (GET with a body, as the seed's clients
    send): a parameter in the query wins over the same one in the body; the path names the type."""
    args = query_lists()
    document = json_body()
    if document is NO_BODY:
        return args
    if not isinstance(document, dict):
        raise BadRequest('The body must be a JSON object such as {"lat": 40.7, "lon": -73.9, "date": "..."}')
    from_body = {name: [value] for name, value in document.items() if name != "complaint_type"}
    return {**from_body, **args}


@route(
    predict,
    "/predict",
    ("POST",),
    uses='one record, a batch {"records": [...]}, or {"payload": base64 of (gzipped) JSON}',
    operations=api.PREDICT_MANY,
)
def predict_many() -> Response:
    body = raw_body()
    if len(body) <= LARGE_BODY_BYTES:
        return _answer_body(body, large=False)
    # What a large body's batch frees goes back to the system once the worker has no other in hand.
    LARGE_BODIES.begin()
    try:
        response = _answer_body(body, large=True)
    except BaseException:
        LARGE_BODIES.end()
        raise
    return LARGE_BODIES.after_sending(response)


def _answer_body(body: bytes, large: bool) -> Response:
    settings = current_app.config["SETTINGS"]
    # Batches are CPU-bound under one GIL: running several at once in a worker adds no throughput,
    # only memory. One at a time per worker; the rest queue. A large body queues before it is
    # parsed, not after: under gevent every queued request would otherwise hold its parsed rows
    # (tens of MB for 10,000) while it waits.
    with BATCH_SLOT if large else contextlib.nullcontext():
        parse = (body, request.mimetype, max_json_values(settings.max_batch_rows), None, True)
        limits = (settings.max_batch_rows, settings.max_decoded_bytes)
        snapshot = _models().snapshot
        if large:  # checking, parsing and answering it is computation: off the loop, in one trip
            rows, is_batch, reply = off_loop(_read_and_answer, parse, limits, snapshot)
        else:
            (rows, is_batch), reply = batch_records(parse_json(*parse), *limits), None
        if not is_batch:
            return json_response(_counted(answer(snapshot, prediction_request(rows[0]))))
        if reply is None:
            # A small body can decode to many rows (a gzipped payload): it queues here instead.
            with BATCH_SLOT if len(rows) > SMALL_BATCH_ROWS else contextlib.nullcontext():
                reply = off_loop(batch_reply, snapshot, rows)
        metrics.predicted("model", snapshot.model_version, reply.model_answers, "batch")
        metrics.predicted("medians", snapshot.medians_version, reply.median_answers, "batch")
        return Response(reply.blob, content_type="application/json")


def _read_and_answer(parse: tuple, limits: tuple[int, int], snapshot: Snapshot) -> tuple[list, bool, BatchReply | None]:
    """The rows of a body, whether it is a batch, and the batch's answer: plain computation, for off_loop."""
    rows, is_batch = batch_records(parse_json(*parse), *limits)
    return rows, is_batch, batch_reply(snapshot, rows) if is_batch else None


@route(
    predict,
    "/health",
    ("GET",),
    uses="liveness, which model and medians are loaded, the last reload error",
    operations=api.HEALTH,
    keyless=True,
)
def health() -> Response:
    models, gate = _models(), current_app.extensions["gate"]
    snapshot = models.snapshot
    redis = gate.redis_status()
    limits_error = gate.limiter.last_error if gate.limiter else None
    healthy = snapshot.model is not None and models.last_error is None and redis in (None, "ok") and not limits_error
    return jsonify(
        {
            "status": "ok" if healthy else "degraded",
            "api_keys": "required" if gate.keys_required else "off",
            "redis": redis,
            "rate_limits_error": limits_error,
            "model_loaded": snapshot.model is not None,
            "model_version": snapshot.model_version,
            "medians_version": snapshot.medians_version,
            "complaint_types_with_medians": len(snapshot.medians),
            "last_reload_error": models.last_error,
        }
    )


@route(
    predict,
    "/model",
    ("GET",),
    uses="the model card: version, training window, metrics, libraries, known complaint types",
    operations=api.MODEL_CARD,
)
def model_card() -> Response:
    card = _models().snapshot.card
    if card is None:
        raise NotFound("No model is loaded")
    return jsonify(card)


@route(
    predict,
    "/openapi.json",
    ("GET",),
    uses="the OpenAPI 3 description of every route (fuzzed against the service by the tests)",
    operations=api.OPENAPI,
    keyless=True,
)
def openapi() -> Response:
    return jsonify(api.openapi_document(served_routes(current_app)))
