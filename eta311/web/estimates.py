"""Answers for prediction requests: the type's median, or the model's estimate with its interval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from eta311.errors import ApiError, Unavailable, UnknownComplaintType
from eta311.web.payloads import PredictionRequest
from eta311.web.served import Snapshot


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


def model_answers(snapshot: Snapshot, requests: Sequence[PredictionRequest]) -> list[dict]:
    """The model's estimates for many requests in one vectorised pass."""
    model = snapshot.model
    if model is None:
        raise Unavailable("No model is loaded; GET /predict/<complaint_type> without lat, lon and date still answers")
    if not requests:
        return []
    nan = float("nan")
    features = model.features(
        [r.complaint_type for r in requests],
        [nan if r.lat is None else r.lat for r in requests],
        [nan if r.lon is None else r.lon for r in requests],
        [r.date for r in requests],
    )
    hours = np.round(model.predict_matrix(features), 2).tolist()
    answers = []
    for request, (low, mid, high) in zip(requests, hours):
        answers.append(
            {
                "status": "success",
                "complaint_type": request.complaint_type,
                "estimated_time": mid,
                "interval": {"low": low, "high": high, "coverage": 0.8},
                "fallbacks": model.fallbacks(request.complaint_type, request.lat, request.lon),
                "model": "gbm",
                "model_version": snapshot.model_version,
            }
        )
    return answers


def answer(snapshot: Snapshot, request: PredictionRequest) -> dict:
    if request.wants_model:
        return model_answers(snapshot, [request])[0]
    return median_answer(snapshot, request.complaint_type)


def batch_answers(snapshot: Snapshot, rows: Sequence[Any], check: Callable[[Any], PredictionRequest]) -> list[dict]:
    """One answer per row, in order; a bad row is a failure at its index and its neighbours still answer."""
    answers: list[dict | None] = [None] * len(rows)
    for_model: list[tuple[int, PredictionRequest]] = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise ApiError("Each record must be a JSON object")
            request = check(row)
            if request.wants_model:
                for_model.append((index, request))
            else:
                answers[index] = median_answer(snapshot, request.complaint_type)
        except ApiError as error:
            answers[index] = {**error.body(), "index": index}
    if for_model:
        try:
            estimates = model_answers(snapshot, [r for _, r in for_model])
        except ApiError as error:
            estimates = [error.body() for _ in for_model]
        for (index, _), estimate in zip(for_model, estimates):
            answers[index] = estimate if estimate["status"] == "success" else {**estimate, "index": index}
    return answers  # type: ignore[return-value]
