"""A batch's whole JSON answer written straight to bytes: the same bytes as its answer dicts through orjson, without the dicts."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from eta311.errors import ApiError
from eta311.web.estimates import batch_answers, card_coverage, json_response, median_answer, model_answer
from eta311.web.payloads import CheckedRows, check_records
from eta311.web.served import Snapshot

# Stand-ins for (low, mid, high) in an answer's template: each prints as one unmistakable token.
_STAND_INS = (1.2345678901234567e-300, 2.3456789012345678e-300, 3.4567890123456789e-300)
_TOKENS = tuple(orjson.dumps(value) for value in _STAND_INS)


@dataclass
class BatchReply:
    """The answer's bytes and what it holds, for the metrics."""

    blob: bytes
    model_answers: int
    median_answers: int
    failed: int


def batch_document(snapshot: Snapshot, answers: list[dict], failed: int, count: int | None = None) -> dict:
    """The answer to a batch; count is len(answers) unless given (the template is made with no answers)."""
    return {
        "status": "success",
        "count": len(answers) if count is None else count,
        "failed": failed,
        "model_version": snapshot.model_version,
        "medians_version": snapshot.medians_version,
        "predictions": answers,
    }


def batch_reply(snapshot: Snapshot, rows: Sequence[Any]) -> BatchReply:
    """The JSON answer to a batch: as json_response(batch_document(...)) writes it, byte for byte.

    Answers of the model are written from a template per (type, fallbacks) with the hours spliced
    in, so no dict is made per row; other answers (failures, medians) are dumped one by one. Where
    the template cannot be made (no model, an answer orjson refuses), the dicts are built after all.
    """
    checked = check_records(rows)
    try:
        return _from_templates(snapshot, checked, len(rows))
    except (_NoTemplate, orjson.JSONEncodeError, ApiError):
        return _from_dicts(snapshot, rows)


def _from_dicts(snapshot: Snapshot, rows: Sequence[Any]) -> BatchReply:
    answers = batch_answers(snapshot, rows)
    kinds = [answer.get("model") for answer in answers]
    failed = kinds.count(None)
    blob = json_response(batch_document(snapshot, answers, failed)).get_data()
    return BatchReply(blob, kinds.count("gbm"), kinds.count("medians"), failed)


class _NoTemplate(Exception):
    pass


def _from_templates(snapshot: Snapshot, checked: CheckedRows, count: int) -> BatchReply:
    others: dict[int, bytes] = {}
    for index, error in checked.failures:
        others[index] = orjson.dumps({**error.body(), "index": index})
    medians: dict[str, bytes] = {}
    median_failed = 0
    for index, complaint_type in zip(checked.median_rows, checked.median_types):
        try:
            if complaint_type not in medians:
                medians[complaint_type] = orjson.dumps(median_answer(snapshot, complaint_type))
            others[index] = medians[complaint_type]
        except ApiError as error:
            others[index] = orjson.dumps({**error.body(), "index": index})
            median_failed += 1
    failed = len(checked.failures) + median_failed
    head = orjson.dumps(batch_document(snapshot, [], failed, count), option=orjson.OPT_APPEND_NEWLINE)
    if not head.endswith(b"[]}\n"):
        raise _NoTemplate("the answer list is not last")
    if not count:
        return BatchReply(head, 0, 0, 0)
    # A row: piece, hour, piece, hour, piece, hour, piece ending in the comma before the next row.
    grid = np.empty((count, 7), dtype=object)
    if others:
        places = np.fromiter(others, dtype=np.intp, count=len(others))
        grid[places, :6] = b""
        grid[places, 6] = [answer + b"," for answer in others.values()]
    if checked.model_rows:
        _fill_model_rows(grid, snapshot, checked)
    parts = grid.ravel().tolist()
    parts[0], parts[-1] = head[:-3] + parts[0], parts[-1][:-1] + b"]}\n"
    return BatchReply(b"".join(parts), len(checked.model_rows), len(checked.median_rows) - median_failed, failed)


def _fill_model_rows(grid: np.ndarray, snapshot: Snapshot, checked: CheckedRows) -> None:
    """Columns 0-6 of the model's rows: four pieces of its group's template around the three hours."""
    model = snapshot.model
    if model is None:
        raise _NoTemplate("no model")
    types = checked.complaint_types
    lats = np.asarray(checked.lats, dtype=np.float64)  # None (not given) becomes NaN
    lons = np.asarray(checked.lons, dtype=np.float64)
    features = model.features(types, lats, lons, np.asarray(checked.stamps, dtype="datetime64[ms]"), snapshot.stats)
    hours = model.predict_matrix(features).round(2)
    # A group is a type and whether coordinates were given: all that its template depends on.
    type_code = dict.fromkeys(types)
    for code, name in enumerate(type_code):
        type_code[name] = code
    missing = np.isnan(lats) | np.isnan(lons)
    groups = np.fromiter(map(type_code.__getitem__, types), dtype=np.intp, count=len(types)) * 2 + missing
    found, first, where = np.unique(groups, return_index=True, return_inverse=True)
    pieces = np.empty((len(found), 4), dtype=object)
    order = None
    known = _templates_of(snapshot)
    for g, row in enumerate(first.tolist()):
        key = (types[row], bool(missing[row]))
        if key not in known:
            known[key] = _template(snapshot, types[row], None if missing[row] else (lats[row], lons[row]))
        (head, between, after, tail), row_order = known[key]
        pieces[g] = head, between, after, tail + b","
        if order not in (None, row_order):
            raise _NoTemplate("templates differ in layout")
        order = row_order
    places = np.asarray(checked.model_rows, dtype=np.intp)
    grid[places, 0:7:2] = pieces[where]
    for column, which in zip((1, 3, 5), order):
        grid[places, column] = orjson.dumps(hours[:, which].tolist())[1:-1].split(b",")


_TEMPLATES: tuple[weakref.ref | None, dict] = (None, {})
MAX_TEMPLATES = 4096


def _templates_of(snapshot: Snapshot) -> dict[tuple[str, bool], tuple[list, list]]:
    """Templates made for the snapshot being served, kept until it is replaced (a reload) or they are many.

    Keyed by type and coordinates missing or not, as model.fallbacks is asked (fallback_flags).
    A weak reference, so a replaced model is not kept alive by its templates.
    """
    global _TEMPLATES
    served, known = _TEMPLATES
    if served is None or served() is not snapshot or len(known) > MAX_TEMPLATES:
        known = {}
        _TEMPLATES = (weakref.ref(snapshot), known)
    return known


def _template(snapshot: Snapshot, complaint_type: str, coordinates: tuple[float, float] | None) -> tuple[list, list]:
    """The four byte pieces of a model answer around its three hours, and which hour (0 low, 1 mid, 2 high) goes
    in each gap."""
    lat, lon = coordinates or (None, None)
    flags = snapshot.model.fallbacks(complaint_type, lat, lon, snapshot.stats)
    version = snapshot.model_version
    answer = model_answer(
        complaint_type,
        flags,
        _STAND_INS,
        version,
        card_coverage(snapshot.card),
        snapshot.stats_version or f"{version}-own",
    )
    blob = orjson.dumps(answer)
    if any(blob.count(token) != 1 for token in _TOKENS):
        raise _NoTemplate("a stand-in is not unique")
    spots = sorted((blob.index(token), which) for which, token in enumerate(_TOKENS))
    pieces, start = [], 0
    for spot, which in spots:
        pieces.append(blob[start:spot])
        start = spot + len(_TOKENS[which])
    pieces.append(blob[start:])
    return pieces, [which for _, which in spots]
