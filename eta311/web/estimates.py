"""Answers for prediction requests: the type's median, or the model's estimate with its interval."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from flask import Response

from eta311.errors import ApiError, Unavailable, UnknownComplaintType
from eta311.model.features import parse_timestamps
from eta311.web.payloads import CheckedRows, PredictionRequest, check_records
from eta311.web.served import Snapshot


def json_response(body: Any) -> Response:
    """An answer as JSON (orjson: answers hold only str, float, int, None, lists and dicts); a newline ends it as jsonify's."""
    try:
        blob = orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        # A client's string with a lone surrogate ("\ud800"), echoed back: orjson refuses it, the
        # standard library escapes it, and the client gets back exactly what it sent.
        blob = (json.dumps(body, separators=(",", ":")) + "\n").encode()
    return Response(blob, content_type="application/json")


def median_answer(snapshot: Snapshot, complaint_type: str) -> dict:
    """The seed's answer: the median hours for a known complaint type."""
    if complaint_type not in snapshot.medians:
        raise UnknownComplaintType(complaint_type)
    return {
        "status": "success",
        "complaint_type": complaint_type,
        "estimated_time": snapshot.medians[complaint_type],
        "model": "medians",
        "model_version": snapshot.medians_version,
    }


_coverage_of: tuple[dict | None, dict] = (None, {})


def card_coverage(card: dict | None) -> dict:
    """measured_coverage of the card being served, worked out once per card (per reload), not per answer."""
    global _coverage_of
    served, coverage = _coverage_of
    if card is None or served is not card:
        coverage = measured_coverage(card)
        _coverage_of = (card, coverage)
    return coverage


def measured_coverage(card: dict | None) -> dict:
    """The 80% interval's coverage as the card measured it on held-out requests, censoring-aware:
    "coverage" is the middle of the bounds (surely covered .. not surely missed), never a constant."""
    bounds = (card or {}).get("metrics", {}).get("interval_coverage")
    if not bounds or "lower" not in bounds:
        return {"coverage": None, "coverage_bounds": None}
    middle = round((bounds["lower"] + bounds["upper"]) / 2, 3)
    return {"coverage": middle, "coverage_bounds": [bounds["lower"], bounds["upper"]], "nominal": bounds["nominal"]}


def estimates(
    snapshot: Snapshot,
    complaint_types: Sequence[str],
    lats: Sequence[float | None],
    lons: Sequence[float | None],
    stamps: Sequence[np.datetime64],
) -> list[dict]:
    """The model's estimates for columns of checked requests (dates parsed), in one vectorised pass."""
    model = snapshot.model
    if model is None:
        raise Unavailable("No model is loaded; GET /predict/<complaint_type> without lat, lon and date still answers")
    if not complaint_types:
        return []
    nan = float("nan")
    features = model.features(
        complaint_types,
        [nan if v is None else v for v in lats],
        [nan if v is None else v for v in lons],
        np.array(stamps, dtype="datetime64[ms]"),
        snapshot.stats,
    )
    hours = model.predict_matrix(features).round(2).tolist()
    version = snapshot.model_version
    coverage = card_coverage(snapshot.card)
    stats_version = snapshot.stats_version or f"{version}-own"
    flags = fallback_flags(model, complaint_types, lats, lons, snapshot.stats)
    return [
        model_answer(complaint_type, row_flags, (low, mid, high), version, coverage, stats_version)
        for complaint_type, row_flags, (low, mid, high) in zip(complaint_types, flags, hours)
    ]


def model_answer(
    complaint_type: str, flags: list[str], hours: tuple[float, float, float], version: str, coverage: dict, stats: str
) -> dict:
    """One row's estimate as answered: hours are (low, mid, high)."""
    low, mid, high = hours
    return {
        "status": "success",
        "complaint_type": complaint_type,
        "estimated_time": mid,
        "interval": {"low": low, "high": high, **coverage},
        "fallbacks": [*flags],
        "model": "gbm",
        "model_version": version,
        "statistics_version": stats,
    }


def fallback_flags(
    model: Any,
    complaint_types: Sequence[str],
    lats: Sequence[float | None],
    lons: Sequence[float | None],
    stats: Any,
) -> list[list[str]]:
    """model.fallbacks for each row, asked once per type and coordinates given or not (all it looks at).

    A batch repeats a few dozen types; asking per row was a third of building its answers.
    Rows share the lists returned, so the caller copies each into its own answer.
    """
    known: dict[tuple[str, bool], list[str]] = {}
    rows = []
    for complaint_type, lat, lon in zip(complaint_types, lats, lons):
        # Checked batches give NaN for coordinates not given; the model is asked with None, as for one request.
        missing = lat is None or lon is None or lat != lat or lon != lon
        key = (complaint_type, missing)
        found = known.get(key)
        if found is None:
            found = known[key] = model.fallbacks(complaint_type, *((None, None) if missing else (lat, lon)), stats)
        rows.append(found)
    return rows


def model_answers(snapshot: Snapshot, requests: Sequence[PredictionRequest]) -> list[dict]:
    """The model's estimates for many requests in one vectorised pass."""
    return estimates(
        snapshot,
        [r.complaint_type for r in requests],
        [r.lat for r in requests],
        [r.lon for r in requests],
        # A request built without the checks (in code, not from a client) still has its date parsed.
        [parse_timestamps([r.date])[0] if r.stamp is None else r.stamp for r in requests],
    )


def single_estimate(snapshot: Snapshot, request: PredictionRequest) -> dict:
    """model_answers(snapshot, [request])[0], step for step without the columns a batch needs: a
    request's latency path, where each list, zip and numpy call in between costs (same answer, tested)."""
    model = snapshot.model
    if model is None:
        raise Unavailable("No model is loaded; GET /predict/<complaint_type> without lat, lon and date still answers")
    complaint_type, lat, lon = request.complaint_type, request.lat, request.lon
    stamp = parse_timestamps([request.date])[0] if request.stamp is None else request.stamp
    stats = snapshot.stats
    nan = float("nan")
    features = model.features(
        [complaint_type],
        [nan if lat is None else lat],
        [nan if lon is None else lon],
        np.array([stamp], dtype="datetime64[ms]"),
        stats,
    )
    ((low, mid, high),) = model.predict_matrix(features).round(2).tolist()
    version = snapshot.model_version
    return model_answer(
        complaint_type,
        model.fallbacks(complaint_type, lat, lon, stats),
        (low, mid, high),
        version,
        card_coverage(snapshot.card),
        snapshot.stats_version or f"{version}-own",
    )


def answer(snapshot: Snapshot, request: PredictionRequest) -> dict:
    if request.wants_model:
        return single_estimate(snapshot, request)
    return median_answer(snapshot, request.complaint_type)


def batch_answers(snapshot: Snapshot, rows: Sequence[Any]) -> list[dict]:
    """One answer per row, in order; a bad row is a failure at its index and its neighbours still answer."""
    checked: CheckedRows = check_records(rows)
    answers: list[dict | None] = [None] * len(rows)
    for index, error in checked.failures:
        answers[index] = {**error.body(), "index": index}
    for index, complaint_type in zip(checked.median_rows, checked.median_types):
        try:
            answers[index] = median_answer(snapshot, complaint_type)
        except ApiError as error:
            answers[index] = {**error.body(), "index": index}
    if checked.model_rows:
        try:
            found = estimates(snapshot, checked.complaint_types, checked.lats, checked.lons, checked.stamps)
        except ApiError as error:
            found = [{**error.body(), "index": index} for index in checked.model_rows]
        for index, estimate in zip(checked.model_rows, found):
            answers[index] = estimate
    return answers  # type: ignore[return-value]
