"""Query strings, JSON bodies and base64 payloads turned into checked, plain request values."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eta311.errors import ApiError, BadRequest, InvalidField, PayloadTooLarge, UnsupportedMediaType
from eta311.model.complaints import canonical_type
from eta311.model.features import parse_timestamp, parse_timestamps

# A generous box around the five boroughs: a point outside it is a typo or swapped lat/lon.
LATITUDE_RANGE = (40.45, 40.95)
LONGITUDE_RANGE = (-74.30, -73.65)
RECORD_FIELDS = ("complaint_type", "lat", "lon", "date")
QUERY_FIELDS = ("lat", "lon", "date")
MAX_TYPE_LENGTH = 120
_RECORD_FIELD_SET = frozenset(RECORD_FIELDS)
# Batches repeat a few dozen types thousands of times: fold each spelling once.
_canonical_type = functools.lru_cache(maxsize=4096)(canonical_type)


@dataclass(frozen=True)
class PredictionRequest:
    """One request to estimate; date None means the median for its type is wanted."""

    complaint_type: str
    lat: float | None = None
    lon: float | None = None
    date: str | None = None
    # The date as the check parsed it (datetime64[ms]), so the model does not parse it again.
    stamp: np.datetime64 | None = field(default=None, compare=False, repr=False)

    @property
    def wants_model(self) -> bool:
        return self.date is not None or self.lat is not None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, mimetype: str) -> Any:
    """A JSON document from a request body; NaN and Infinity are refused as JSON itself does."""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Send JSON with Content-Type: application/json, not {mimetype or 'nothing'}")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None


def decode_base64(text: object, field: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet): stray characters are an error, not dropped."""
    if not isinstance(text, str):
        raise InvalidField(field, f"{field} must be a base64 string")
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact.encode("ascii"))
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField(field, f"{field} is not valid base64") from None


def decode_payload(text: object, max_bytes: int) -> Any:
    """A base64 payload holding JSON, gzip-compressed or not, never inflated past max_bytes."""
    blob = decode_base64(text, "payload")
    if blob[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            blob = inflater.decompress(blob, max_bytes + 1)
        except zlib.error:
            raise InvalidField("payload", "payload is not valid gzip") from None
        if len(blob) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"The decoded payload is over the {max_bytes} byte limit")
    elif len(blob) > max_bytes:
        raise PayloadTooLarge(f"The decoded payload is over the {max_bytes} byte limit")
    return parse_json(blob, "application/json")


def _coordinate(value: object, field: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidField(field, f"{field} must be a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer past float range (JSON allows any length)
        raise InvalidField(field, f"{field} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidField(field, f"{field} must be a finite number")
    if not bounds[0] <= number <= bounds[1]:
        raise InvalidField(field, f"{field} must be between {bounds[0]} and {bounds[1]} (New York City)")
    return number


def _complaint_type(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("complaint_type", "complaint_type must be a non-empty string")
    if len(value) > MAX_TYPE_LENGTH:
        raise InvalidField("complaint_type", f"complaint_type must be at most {MAX_TYPE_LENGTH} characters")
    return _canonical_type(value)


DATE_PROBLEM = "date must look like 2019-06-08 00:00:09 (New York local time)"


def _date(value: object) -> tuple[str, np.datetime64]:
    stamp = parse_timestamp(value.strip()) if isinstance(value, str) else None
    if stamp is None or np.isnat(stamp):
        raise InvalidField("date", DATE_PROBLEM)
    return value.strip(), stamp


def prediction_request(values: Mapping[str, object], allowed: Sequence[str] = RECORD_FIELDS) -> PredictionRequest:
    """Check one record's fields; lat and lon come together, and coordinates need a date."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidField(unknown[0], f"Unknown field {unknown[0]!r}; expected only {', '.join(allowed)}")
    complaint_type = _complaint_type(values.get("complaint_type"))
    lat, lon, date = values.get("lat"), values.get("lon"), values.get("date")
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidField(missing, "lat and lon must be given together")
    if lat is not None and date is None:
        raise InvalidField("date", "date is required with lat and lon")
    lat = None if lat is None else _coordinate(lat, "lat", LATITUDE_RANGE)
    lon = None if lon is None else _coordinate(lon, "lon", LONGITUDE_RANGE)
    if date is None:
        return PredictionRequest(complaint_type, lat, lon)
    return PredictionRequest(complaint_type, lat, lon, *_date(date))


@dataclass
class CheckedRows:
    """A batch checked column by column: the rows the model answers, those the medians answer, and failures."""

    model_rows: list[int] = field(default_factory=list)
    complaint_types: list[str] = field(default_factory=list)
    lats: list[float | None] = field(default_factory=list)
    lons: list[float | None] = field(default_factory=list)
    stamps: list[np.datetime64] = field(default_factory=list)
    median_rows: list[int] = field(default_factory=list)
    median_types: list[str] = field(default_factory=list)
    failures: list[tuple[int, ApiError]] = field(default_factory=list)

    def add(self, index: int, request: PredictionRequest) -> None:
        if request.wants_model:
            self.model_rows.append(index)
            self.complaint_types.append(request.complaint_type)
            self.lats.append(request.lat)
            self.lons.append(request.lon)
            self.stamps.append(request.stamp)
        else:
            self.median_rows.append(index)
            self.median_types.append(request.complaint_type)


def _in_range(values: list[float | None], bounds: tuple[float, float]) -> np.ndarray:
    numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    given = np.array([v is not None for v in values], dtype=bool)
    return ~given | ((numbers >= bounds[0]) & (numbers <= bounds[1]))


def check_records(rows: Sequence[Any]) -> CheckedRows:
    """Every row of a batch checked as prediction_request checks one record, the usual shapes in bulk.

    A row in the usual shape (a JSON object with a string type, float coordinates or none, and a
    string date) is gathered with a few type tests, and its coordinates and date are then checked
    for the whole batch at once. Any other row, and any that fails a bulk check, goes through
    prediction_request itself, so a failure names the same field with the same message.
    """
    checked, slow = CheckedRows(), []
    gathered: list[int] = []
    kinds: list[str] = []
    lats: list[float | None] = []
    lons: list[float | None] = []
    dates: list[str] = []
    for index, row in enumerate(rows):
        if type(row) is dict and row.keys() <= _RECORD_FIELD_SET:
            kind, lat, lon, date = row.get("complaint_type"), row.get("lat"), row.get("lon"), row.get("date")
            if type(kind) is str and len(kind) <= MAX_TYPE_LENGTH and kind.strip():
                plain = (lat is None and lon is None) or (type(lat) is float and type(lon) is float)
                if plain and date is None and lat is None:
                    checked.median_rows.append(index)
                    checked.median_types.append(_canonical_type(kind))
                    continue
                if plain and type(date) is str:
                    gathered.append(index)
                    kinds.append(_canonical_type(kind))
                    lats.append(lat)
                    lons.append(lon)
                    dates.append(date.strip())
                    continue
        slow.append(index)
    if gathered:
        stamps = parse_timestamps(dates)
        fine = _in_range(lats, LATITUDE_RANGE) & _in_range(lons, LONGITUDE_RANGE) & ~np.isnat(stamps)
        keep = fine.tolist() if not fine.all() else None
        checked.model_rows = gathered if keep is None else [v for v, ok in zip(gathered, keep) if ok]
        checked.complaint_types = kinds if keep is None else [v for v, ok in zip(kinds, keep) if ok]
        checked.lats = lats if keep is None else [v for v, ok in zip(lats, keep) if ok]
        checked.lons = lons if keep is None else [v for v, ok in zip(lons, keep) if ok]
        checked.stamps = list(stamps if keep is None else stamps[fine])
        slow += [] if keep is None else [v for v, ok in zip(gathered, keep) if not ok]
    for index in slow:
        try:
            if not isinstance(rows[index], dict):
                raise ApiError("Each record must be a JSON object")
            checked.add(index, prediction_request(rows[index]))
        except ApiError as error:
            checked.failures.append((index, error))
    return checked


def query_request(complaint_type: str, args: Mapping[str, Sequence[str]]) -> PredictionRequest:
    """GET /predict/<type>?lat=..&lon=..&date=..: each parameter once, as the seed's clients send."""
    values: dict[str, object] = {"complaint_type": complaint_type}
    for name, given in args.items():
        if name not in QUERY_FIELDS:
            raise InvalidField(name, f"Unknown query parameter {name!r}; expected only {', '.join(QUERY_FIELDS)}")
        if len(given) != 1:
            raise InvalidField(name, f"{name} must be given once")
        values[name] = given[0]
    return prediction_request(values)


def batch_records(document: Any, max_rows: int, max_decoded_bytes: int) -> tuple[list[Any], bool]:
    """The rows of a POST /predict body, and whether it was a batch (answered as a list)."""
    if not isinstance(document, dict):
        raise BadRequest('The body must be a JSON object: one record, {"records": [...]} or {"payload": ...}')
    if "payload" in document:
        if set(document) != {"payload"}:
            raise InvalidField(sorted(set(document) - {"payload"})[0], 'A payload body holds only "payload"')
        document = decode_payload(document["payload"], max_decoded_bytes)
        if isinstance(document, list):
            document = {"records": document}
        if not isinstance(document, dict) or "records" not in document:
            raise InvalidField("payload", 'payload must hold {"records": [...]} or a list of records')
    if "records" not in document:
        return [document], False
    if set(document) != {"records"}:
        raise InvalidField(sorted(set(document) - {"records"})[0], 'A batch body holds only "records"')
    rows = document["records"]
    if not isinstance(rows, list):
        raise InvalidField("records", "records must be a list")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"At most {max_rows} records per request; this one has {len(rows)}")
    return rows, True


NO_BODY = object()


def echo_message(args: Mapping[str, Sequence[str]], document: Any = NO_BODY) -> tuple[bool, Any]:
    """The msg to echo, from the query string (one value stays a scalar) or a JSON body."""
    if document is not NO_BODY:
        if not isinstance(document, dict):
            raise BadRequest('The body must be a JSON object such as {"msg": "Hello"}')
        encoding = document.get("encoding")
        if "encoding" in document and encoding != "base64":
            raise InvalidField("encoding", 'encoding can only be "base64"')
        if "msg" not in document:
            return False, None
        if encoding == "base64":
            decode_base64(document["msg"], "msg")  # refuse what a client could not decode back
        return True, document["msg"]
    given = args.get("msg")
    if not given:
        return False, None
    return True, given[0] if len(given) == 1 else list(given)
